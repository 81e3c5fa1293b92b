"""`studiox`: the operator's and developer's command line."""

from __future__ import annotations

import argparse
import sys
from typing import cast

from services.kit.settings import SERVICE_NAMES, ServiceName


def _dev(ns: argparse.Namespace) -> int:
    from devstack import stack

    settings = stack.StackSettings()
    if ns.dev_command == "run":
        return stack.run(settings)
    if ns.dev_command == "postgres":
        settings.embedded.exec_server()
    elif ns.dev_command == "service":
        stack.run_service(settings, cast(ServiceName, ns.name))
    elif ns.dev_command == "gateway":
        stack.run_gateway(settings)
    elif ns.dev_command == "banner":
        return stack.banner(settings)
    return 0


def _migrate(ns: argparse.Namespace) -> int:
    from services.kit.logs import configure_logging
    from services.kit.migrate import upgrade
    from services.kit.settings import load_settings

    unknown = set(ns.services) - set(SERVICE_NAMES)
    if unknown:
        print(f"unknown service(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    settings = load_settings()
    configure_logging("migrate", settings.log_level, "text")
    for name in cast(list[ServiceName], ns.services) or SERVICE_NAMES:
        upgrade(name, settings)
        print(f"{name}: migrated")
    return 0


def _gateway(ns: argparse.Namespace) -> int:
    from pathlib import Path

    from gateway.config import exec_envoy, from_settings, write
    from services.kit.settings import load_settings

    settings = load_settings()
    path = write(from_settings(settings), Path(ns.out or settings.gateway_config_path))
    if ns.gateway_command == "render":
        print(path)
        return 0
    exec_envoy(path)
    return 0


def _probe(ns: argparse.Namespace) -> int:
    """Exit 0 when the gRPC health check of ADDRESS answers SERVING (container health checks)."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    try:
        with grpc.insecure_channel(ns.address) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=ns.service), timeout=ns.timeout
            )
    except grpc.RpcError as err:
        print(f"{ns.address}: {err.code().name}", file=sys.stderr)
        return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(f"{ns.address}: {status}")
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1


def _token(ns: argparse.Namespace) -> int:
    from devstack import dev_tokens, stack

    settings = stack.StackSettings()
    try:
        token = dev_tokens.mint(
            settings.state_dir, ns.user, email=ns.email, name=ns.name, ttl=ns.ttl
        )
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(token)
    return 0


def _ledger_verify(ns: argparse.Namespace) -> int:
    import asyncio

    import grpc

    from services.kit.clients import ServiceChannels
    from services.kit.settings import load_settings
    from studiox.credit.v1 import credit_pb2, credit_pb2_grpc

    async def verify() -> credit_pb2.VerifyLedgerResponse:
        channels = ServiceChannels(load_settings())
        try:
            stub = credit_pb2_grpc.CreditInternalServiceStub(channels.channel("credit"))
            reply: credit_pb2.VerifyLedgerResponse = await stub.VerifyLedger(
                credit_pb2.VerifyLedgerRequest(), timeout=ns.timeout
            )
            return reply
        finally:
            await channels.close()

    try:
        report = asyncio.run(verify())
    except grpc.aio.AioRpcError as err:
        print(f"ledger verify failed: {err.code().name}: {err.details()}", file=sys.stderr)
        return 2
    differences = list(report.differences)
    print(f"checked {report.accounts_checked} accounts: {len(differences)} difference(s)")
    for d in differences:
        print(f"  {d.user_id}: {d.problem}: balance {d.balance}, ledger {d.ledger_sum}")
    return 1 if differences else 0


def _jobs_run(ns: argparse.Namespace) -> int:
    import asyncio

    from services.kit.clients import ServiceChannels
    from services.kit.db import Database
    from services.kit.logs import configure_logging
    from services.kit.settings import load_settings
    from services.scheduler.config import SchedulerConfig
    from services.scheduler.jobs import JobRun, JobRunner, Jobs

    settings = load_settings()
    configure_logging("jobs", settings.log_level, "text")
    config = SchedulerConfig(instance="cli")

    async def run() -> JobRun:
        db, channels = Database(settings, pool_size=2), ServiceChannels(settings)
        try:
            return await JobRunner(db, Jobs(channels, config), config.instance).run(
                ns.job, trigger="manual"
            )
        finally:
            await channels.close()
            await db.close()

    result = asyncio.run(run())
    print(
        f"{result.job}: {result.outcome} {result.counts}"
        + (f" ({result.error})" if result.error else "")
    )
    return 0 if result.outcome == "ok" else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="studiox", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    dev = sub.add_parser("dev", help="local stack (what `make run` starts)")
    dev_sub = dev.add_subparsers(dest="dev_command", required=True)
    dev_sub.add_parser("run", help="start the whole stack")
    dev_sub.add_parser("postgres", help="run the embedded PostgreSQL server")
    service = dev_sub.add_parser("service", help="wait for the database, migrate and serve")
    service.add_argument("name", choices=SERVICE_NAMES)
    dev_sub.add_parser("gateway", help="render the Envoy config and run Envoy")
    dev_sub.add_parser("banner", help="wait for /health and print the ready banner")
    dev.set_defaults(func=_dev)

    migrate = sub.add_parser("migrate", help="migrate service schemas (all by default)")
    migrate.add_argument("services", nargs="*", metavar="SERVICE", help=", ".join(SERVICE_NAMES))
    migrate.set_defaults(func=_migrate)

    token = sub.add_parser(
        "token",
        help="print a dev token for the local stack (trusted only with APP_ENV=development)",
    )
    token.add_argument("--user", required=True, help="user id (the token's sub)")
    token.add_argument("--email")
    token.add_argument("--name")
    token.add_argument("--ttl", type=int, default=8 * 3600, help="lifetime in seconds")
    token.set_defaults(func=_token)

    ledger = sub.add_parser("ledger", help="credit ledger operations")
    ledger_sub = ledger.add_subparsers(dest="ledger_command", required=True)
    verify = ledger_sub.add_parser(
        "verify", help="check balance == sum of entries for every account; exit 1 on differences"
    )
    verify.add_argument("--timeout", type=float, default=300.0)
    verify.set_defaults(func=_ledger_verify)

    jobs = sub.add_parser("jobs", help="scheduler jobs")
    jobs_sub = jobs.add_subparsers(dest="jobs_command", required=True)
    run_job = jobs_sub.add_parser(
        "run", help="run a job now, through the scheduler's own code path (recorded in job_runs)"
    )
    run_job.add_argument("job", choices=["credit-reset", "process-tasks", "repair"])
    run_job.set_defaults(func=_jobs_run)

    gateway = sub.add_parser(
        "gateway", help="the Envoy gateway, configured from the environment (*_SERVICE_ADDR, PORT…)"
    )
    gateway_sub = gateway.add_subparsers(dest="gateway_command", required=True)
    for name, text in (
        ("render", "write the config and print its path"),
        ("run", "render, then run Envoy"),
    ):
        command = gateway_sub.add_parser(name, help=text)
        command.add_argument("--out", help="config path (default: GATEWAY_CONFIG_PATH)")
        command.set_defaults(func=_gateway)

    probe = sub.add_parser("probe", help="gRPC health check of a service; exit 0 when SERVING")
    probe.add_argument("address", help="host:port")
    probe.add_argument("--service", default="", help="service name (default: the whole server)")
    probe.add_argument("--timeout", type=float, default=3.0)
    probe.set_defaults(func=_probe)
    return parser


def main(argv: list[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    return int(ns.func(ns) or 0)


if __name__ == "__main__":
    sys.exit(main())
