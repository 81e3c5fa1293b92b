"""`python -m devstack <part>`: the long-running parts of the local stack besides the services, as
devstack.stack.processes starts them. Each imports only what its part needs: `studiox dev <part>`
does the same work after importing the whole command line (~0.6 s of CPU per process, most of a
cold start on a small machine)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

PARTS = ("postgres", "gateway", "stripe", "webhooks", "prometheus", "banner")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack")
    parser.add_argument("part", choices=PARTS)
    # The server's folder and port come from the command line: it needs no settings at all.
    parser.add_argument("args", nargs="*", help="postgres: DATA_DIR PORT")
    ns = parser.parse_args(argv)
    if ns.part == "postgres":
        from devstack.postgres import EmbeddedPostgres

        data_dir, port = ns.args
        EmbeddedPostgres(Path(data_dir), int(port)).exec_server()
        return 0  # not reached: the server replaced this process

    from devstack import stack
    from services.kit.settings import startup_settings

    settings = startup_settings("dev", check_secrets=False, kind=stack.StackSettings)
    if ns.part == "gateway":
        stack.run_gateway(settings)
    elif ns.part == "stripe":
        stack.run_dev_stripe(settings)
    elif ns.part == "webhooks":
        stack.run_dev_webhooks(settings)
    elif ns.part == "prometheus":
        stack.run_prometheus(settings)
    else:
        return stack.banner(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
