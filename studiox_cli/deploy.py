"""The commands a deployment's containers run: `migrate`, `gateway render|run`, `worker` and
`probe` (their health check)."""

from __future__ import annotations

import argparse
import sys
from typing import cast

from services.kit.settings import SERVICE_NAMES, ServiceName
from studiox_cli.common import health, local_settings, require_database


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    migrate_ = sub.add_parser("migrate", help="migrate service schemas (all by default)")
    migrate_.add_argument("services", nargs="*", metavar="SERVICE", help=", ".join(SERVICE_NAMES))
    migrate_.set_defaults(func=migrate)

    gateway_ = sub.add_parser(
        "gateway", help="the Envoy gateway, configured from the environment (*_SERVICE_ADDR, PORT…)"
    )
    gateway_sub = gateway_.add_subparsers(dest="gateway_command", required=True)
    for name, text in (
        ("render", "write the config and print its path"),
        ("run", "render, then run Envoy"),
    ):
        command = gateway_sub.add_parser(name, help=text)
        command.add_argument("--out", help="config path (default: GATEWAY_CONFIG_PATH)")
        command.set_defaults(func=gateway)

    from services.worker.main import add_arguments as worker_arguments

    worker_ = sub.add_parser(
        "worker", help="process tasks: claim, run a processor per type, report (docs/WORKERS.md)"
    )
    worker_arguments(worker_)
    worker_.set_defaults(func=worker)

    probe_ = sub.add_parser("probe", help="gRPC health check of a service; exit 0 when SERVING")
    probe_.add_argument("address", help="host:port")
    probe_.add_argument("--service", default="", help="service name (default: the whole server)")
    probe_.add_argument("--timeout", type=float, default=3.0)
    probe_.set_defaults(func=probe)


def migrate(ns: argparse.Namespace) -> int:
    from services.kit.logs import configure_logging
    from services.kit.migrate import upgrade

    unknown = set(ns.services) - set(SERVICE_NAMES)
    if unknown:
        print(f"unknown service(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    settings = local_settings("migrate")
    require_database(settings)
    configure_logging("migrate", settings.log_level, "text", stream=sys.stderr)
    for name in cast(list[ServiceName], ns.services) or SERVICE_NAMES:
        upgrade(name, settings)
        print(f"{name}: migrated")
    return 0


def gateway(ns: argparse.Namespace) -> int:
    from pathlib import Path

    from gateway.config import exec_envoy, from_settings, write
    from services.kit.settings import startup_settings

    # The gateway holds no secrets: only its values are checked.
    settings = startup_settings("gateway", check_secrets=False)
    path = write(from_settings(settings), Path(ns.out or settings.gateway_config_path))
    if ns.gateway_command == "render":
        print(path)
        return 0
    exec_envoy(path)
    return 0


def worker(ns: argparse.Namespace) -> int:
    from services.worker.main import run

    return run(ns)


def probe(ns: argparse.Namespace) -> int:
    """Exit 0 when the gRPC health check of ADDRESS answers SERVING (container health checks)."""
    status = health(ns.address, ns.service, ns.timeout)
    print(f"{ns.address}: {status}", file=sys.stdout if status == "SERVING" else sys.stderr)
    return 0 if status == "SERVING" else 1
