"""Command line of every service process: `python -m services.<svc> [serve|migrate]`."""

from __future__ import annotations

import argparse
from collections.abc import Callable

import uvloop

from services.kit import tracing
from services.kit.logs import configure_logging
from services.kit.server import ServiceSpec, serve
from services.kit.settings import ServiceName, Settings, startup_settings

SpecFactory = Callable[[Settings], ServiceSpec]


def run_service(name: ServiceName, build_spec: SpecFactory, argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog=f"python -m services.{name}")
    parser.add_argument(
        "command",
        nargs="?",
        default="serve",
        choices=["serve", "migrate", "migrate-and-serve"],
        help="serve (default), migrate its schema, or both",
    )
    ns = parser.parse_args(argv)
    # Secrets are checked before serving (a migration needs only the database).
    settings = startup_settings(name, check_secrets=ns.command != "migrate")
    configure_logging(name, settings.log_level, settings.log_format)
    if ns.command in ("migrate", "migrate-and-serve"):
        # Imported here: alembic is ~15 MiB of a serving process that never migrates (deployments
        # migrate in a job of their own).
        from services.kit.migrate import upgrade

        upgrade(name, settings)
    if ns.command in ("serve", "migrate-and-serve"):
        # Before the spec is built: its database engine is instrumented as it is created.
        tracing.configure(name)
        try:
            # uvloop: its loop costs less per callback and per socket event than asyncio's
            # (docs/PERFORMANCE.md has the measured effect).
            uvloop.run(serve(build_spec(settings), settings))
        finally:
            tracing.shutdown()
