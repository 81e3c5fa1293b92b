"""`studiox`: the operator's and developer's command line."""

from __future__ import annotations

import argparse
import sys

from studiox_cli import credits, deploy, dev, jobs, webhooks
from studiox_cli.common import CommandError, database_failure, local_settings, require_database


def _webhooks(ns: argparse.Namespace) -> int:
    import psycopg

    settings = local_settings("webhooks")
    require_database(settings)
    try:
        status, lines = webhooks.run(ns, settings)
    except psycopg.Error as exc:
        raise CommandError(f"reading the outboxes failed: {database_failure(exc)}") from None
    print("\n".join(lines))
    return status


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="studiox", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    # Each command group's module adds its own commands, in the order `studiox --help` lists them.
    dev.add_commands(sub)
    deploy.add_commands(sub)
    credits.add_commands(sub)
    jobs.add_commands(sub)
    webhooks.add_commands(sub, _webhooks)
    return parser


def main(argv: list[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    try:
        return int(ns.func(ns) or 0)
    except CommandError as exc:
        print(f"studiox {ns.command}: {exc}", file=sys.stderr)
        return 2
