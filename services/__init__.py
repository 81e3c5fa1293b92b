"""StudioX's services, one package each, and their shared runtime (services/kit).

httpx (outbound webhooks, Stripe's async client) imports its command-line client when click, rich
and pygments are importable. They are, in the development environment, for the test tools: ~6 MiB
resident in every service process that sends, and nothing here runs httpx's command line. The
production image does not have them at all (deploy/prune_venv.py), so this keeps the local stack's
processes the size of production's: importing `httpx._main` fails, and httpx falls back to its
stub `main` (its own `except ImportError`). docs/PERFORMANCE.md has the measured effect."""

import sys

sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
