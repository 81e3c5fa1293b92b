"""Command line of every service process: `python -m services.<svc> [serve|migrate]`."""

from __future__ import annotations

import argparse
import gc
import os
import sys
import traceback
from collections.abc import Callable

import uvloop

from services.kit import tracing
from services.kit.logs import configure_logging
from services.kit.server import ServiceSpec, serve
from services.kit.settings import ServiceName, Settings, startup_settings
from services.kit.waiting import retry_until

SpecFactory = Callable[[Settings], ServiceSpec]
# Between two attempts to reach a database that is still starting: a refused connection costs
# ~0.25 ms of CPU, so a short pause wastes little and notices the server soon after it is up.
DATABASE_POLL_SECONDS = 0.05


def run_service(name: ServiceName, build_spec: SpecFactory, argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog=f"python -m services.{name}")
    parser.add_argument(
        "command",
        nargs="?",
        default="serve",
        choices=["serve", "migrate", "migrate-and-serve"],
        help="serve (default), migrate its schema, or both",
    )
    parser.add_argument(
        "--wait-for-database",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before migrating, wait up to SECONDS for the database server to accept connections "
        "(the local stack starts the services together with its database)",
    )
    ns = parser.parse_args(argv)
    # Secrets are checked before serving (a migration needs only the database).
    settings = startup_settings(name, check_secrets=ns.command != "migrate")
    configure_logging(name, settings.log_level, settings.log_format)
    if ns.command == "migrate-and-serve":
        # What the imports built moves out of the collector's reach (as serving does later,
        # services/kit/server.py), so the migrating child's collections skip those objects
        # instead of walking, and copying page by page, every one of them.
        gc.collect()
        gc.freeze()
    if ns.command in ("migrate", "migrate-and-serve") and ns.wait_for_database > 0:
        wait_for_database(settings.libpq_url, ns.wait_for_database)
    if ns.command == "migrate":
        migrate(name, settings)
    elif ns.command == "migrate-and-serve":
        # In a child process that shares the modules already imported: alembic and SQLAlchemy
        # (~26 MiB resident) then never become part of the serving process.
        in_child_process(lambda: migrate(name, settings))
    if ns.command in ("serve", "migrate-and-serve"):
        # Before the spec is built: its clients' interceptors are chosen as they are created.
        tracing.configure(name)
        try:
            # uvloop: its loop costs less per callback and per socket event than asyncio's
            # (docs/PERFORMANCE.md has the measured effect).
            uvloop.run(serve(build_spec(settings), settings))
        finally:
            tracing.shutdown()


def migrate(name: ServiceName, settings: Settings) -> None:
    # Imported here: alembic is ~9 MiB of a process that never migrates (deployments migrate in a
    # job of their own; `migrate-and-serve` migrates in a child process).
    from services.kit.migrate import upgrade

    upgrade(name, settings)


def in_child_process(work: Callable[[], None]) -> None:
    """Run `work` in a forked child and wait for it; its failure ends this process with the same
    status (its traceback on stderr, as if it had run here). Forked before any thread, channel or
    connection exists (only imports, settings and logging), so the child inherits nothing shared
    but the modules."""
    if not hasattr(os, "fork"):
        work()
        return
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        status = 0
        try:
            work()
        except SystemExit as exc:
            status = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            traceback.print_exc()
            status = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)
    _, wait_status = os.waitpid(pid, 0)
    status = os.waitstatus_to_exitcode(wait_status)
    if status != 0:
        # A negative status is the signal that ended the child.
        raise SystemExit(status if status > 0 else 128 - status)


def wait_for_database(url: str, seconds: float) -> None:
    """Until the database at `url` accepts a connection, for at most `seconds` (then the last
    failure is raised). libpq reports every connection failure alike (no SQLSTATE), so a server
    still starting up and a database that is missing are both retried until then."""
    import psycopg

    def connect() -> None:
        with psycopg.connect(url, connect_timeout=2):
            pass

    retry_until(
        connect, seconds=seconds, pause=DATABASE_POLL_SECONDS, retry_on=psycopg.OperationalError
    )
