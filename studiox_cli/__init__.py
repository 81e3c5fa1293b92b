"""`studiox`, the operator's and developer's command line: the top layer, above services, devstack
and gateway (none of which imports it)."""
