"""Ports for the servers tests start, reserved so that no other process can be handed them.

Binding port 0 and closing the socket (the usual "free port") leaves a window in which the kernel
may give the same port to anyone else: another test session's server, or any outgoing connection.
With SO_REUSEPORT (gRPC's and Envoy's default) a second server even binds it silently and the
kernel splits connections between the two. Instead, each port stays bound here, never listening,
with SO_REUSEADDR, until this process exits: the kernel hands it to no other bind(0) or outgoing
connection, while our servers, which set SO_REUSEADDR (gRPC, Envoy, PostgreSQL, Python's
socketserver), still bind and listen on it, as often as a test restarts them.

A stack with several processes per service puts them on ports REPLICA_PORT_STEP apart
(devstack.stack.replica_endpoints): `free_port(spaced=..., count=...)` reserves that whole row, so
no replica's port is one nobody reserved (which any outgoing connection could be using).
"""

from __future__ import annotations

import socket
from contextlib import suppress

_reserved: list[socket.socket] = []


def free_port(*, spaced: int = 0, count: int = 1) -> int:
    """A port on 127.0.0.1 reserved for this test process (see the module's docstring), with
    `count - 1` more at steps of `spaced` above it reserved too."""
    while True:
        first = claim(0)
        assert first is not None, "no free port on 127.0.0.1"
        row = [first]
        port = first.getsockname()[1]
        for i in range(1, count):
            taken = claim(port + spaced * i)
            if taken is None:
                break
            row.append(taken)
        if len(row) == count:
            _reserved.extend(row)
            return int(port)
        for sock in row:
            sock.close()


def claim(port: int) -> socket.socket | None:
    """A socket bound to 127.0.0.1:port, or None when anything else holds the port.

    Bound without SO_REUSEADDR first, so that any socket on the port, a reservation of another test
    session included, is a conflict; SO_REUSEADDR is set after, for our servers' own bind."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        return None
    with suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    return sock
