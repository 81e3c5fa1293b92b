"""`studiox`: the operator's and developer's command line."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, cast

from services.kit.settings import SERVICE_NAMES, ServiceName

if TYPE_CHECKING:
    from devstack.stack import StackSettings
    from services.kit.settings import Settings

# Said with every "cannot reach" line: where the command looked, and how to point it elsewhere.
STACK_HINT = "is the stack running (`make run`)? Elsewhere set DATABASE_URL / *_SERVICE_ADDR"
PROBE_TIMEOUT_SECONDS = 3.0
# The service each scheduler job calls.
JOB_SERVICES: dict[str, ServiceName] = {
    "credit-reset": "credit",
    "credit-expiry": "credit",
    "process-tasks": "task",
    "repair": "task",
}


class CommandError(Exception):
    """A command cannot do its work (a part of the stack does not answer, ...): one line for the
    operator, exit status 2, no traceback."""


def _settings(command: str) -> StackSettings:
    """Every operator command finds the stack the same way (devstack.stack.local_settings)."""
    from devstack.stack import local_settings

    return local_settings(command)


def _require_database(settings: Settings) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    shown = make_url(settings.libpq_url).render_as_string(hide_password=True)
    try:
        with psycopg.connect(settings.libpq_url, connect_timeout=int(PROBE_TIMEOUT_SECONDS)):
            pass
    except psycopg.Error as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CommandError(
            f"PostgreSQL at {shown} does not answer ({reason}); {STACK_HINT}"
        ) from None


def _health(target: str, service: str, timeout: float) -> str:
    """Status name of a gRPC health check ("SERVING", ...), or the gRPC code that answered."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    try:
        with grpc.insecure_channel(target) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout
            )
    except grpc.RpcError as err:
        return str(err.code().name)
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


def _require_service(settings: Settings, name: ServiceName) -> None:
    status = _health(settings.channel_target(name), "", PROBE_TIMEOUT_SECONDS)
    if status != "SERVING":
        raise CommandError(
            f"the {name} service at {settings.service_addr(name)} does not answer ({status});"
            f" {STACK_HINT}"
        )


def _dev(ns: argparse.Namespace) -> int:
    from devstack import stack
    from services.kit.settings import startup_settings

    settings = startup_settings("dev", check_secrets=False, kind=stack.StackSettings)
    if ns.dev_command == "run":
        return stack.run(settings)
    if ns.dev_command == "postgres":
        settings.embedded.exec_server()
    elif ns.dev_command == "service":
        stack.run_service(settings, cast(ServiceName, ns.name))
    elif ns.dev_command == "gateway":
        stack.run_gateway(settings)
    elif ns.dev_command == "prometheus":
        stack.run_prometheus(settings)
    elif ns.dev_command == "banner":
        return stack.banner(settings)
    elif ns.dev_command == "stripe":
        stack.run_dev_stripe(settings)
    elif ns.dev_command in ("pay", "advance-clock"):
        return _dev_payments(ns, settings)
    return 0


def _dev_payments(ns: argparse.Namespace, settings: StackSettings) -> int:
    """`dev pay` and `dev advance-clock`: what a customer or Stripe's clock does, through the
    local Stripe; the services hear of it only through its signed webhooks."""
    import httpx

    from devstack import stripe_dev

    base = stripe_dev.api_base(settings.dev_stripe_port)
    try:
        if ns.dev_command == "pay":
            target = ns.target
            if target == "-":
                try:
                    target = stripe_dev.target_in(sys.stdin.read())
                except ValueError as exc:
                    raise CommandError(str(exc)) from None
            base, session_id = stripe_dev.session_target(target, base)
            action = "decline" if ns.decline else "authenticate_ok" if ns.authenticate else "pay"
            status, body = stripe_dev.pay(base, session_id, action)
        else:
            status, body = stripe_dev.advance_clock(base, decline=ns.decline, user=ns.user)
    except httpx.HTTPError as exc:
        raise CommandError(
            f"the local Stripe at {base} does not answer ({exc}); {STACK_HINT}"
        ) from None
    if status >= 400:
        print(f"studiox dev {ns.dev_command}: {body['error']['message']}", file=sys.stderr)
        return 1
    print("\n".join(stripe_dev.summary(body)))
    if not body.get("delivered", True):
        print("warning: webhooks not delivered yet (is the gateway up?)", file=sys.stderr)
    return 0


def _migrate(ns: argparse.Namespace) -> int:
    from services.kit.logs import configure_logging
    from services.kit.migrate import upgrade

    unknown = set(ns.services) - set(SERVICE_NAMES)
    if unknown:
        print(f"unknown service(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    settings = _settings("migrate")
    _require_database(settings)
    configure_logging("migrate", settings.log_level, "text", stream=sys.stderr)
    for name in cast(list[ServiceName], ns.services) or SERVICE_NAMES:
        upgrade(name, settings)
        print(f"{name}: migrated")
    return 0


def _gateway(ns: argparse.Namespace) -> int:
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


def _worker(ns: argparse.Namespace) -> int:
    from services.worker.main import run

    return run(ns)


def _probe(ns: argparse.Namespace) -> int:
    """Exit 0 when the gRPC health check of ADDRESS answers SERVING (container health checks)."""
    status = _health(ns.address, ns.service, ns.timeout)
    print(f"{ns.address}: {status}", file=sys.stdout if status == "SERVING" else sys.stderr)
    return 0 if status == "SERVING" else 1


def _token(ns: argparse.Namespace) -> int:
    from devstack import dev_tokens

    settings = _settings("token")
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
    from studiox.credit.v1 import credit_pb2, credit_pb2_grpc

    settings = _settings("ledger")
    _require_service(settings, "credit")

    async def verify() -> credit_pb2.VerifyLedgerResponse:
        channels = ServiceChannels(settings)
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
        raise CommandError(f"ledger verify failed: {err.code().name}: {err.details()}") from None
    differences = list(report.differences)
    print(f"checked {report.accounts_checked} accounts: {len(differences)} difference(s)")
    for d in differences:
        print(f"  {d.user_id}: {d.problem}: balance {d.balance}, ledger {d.ledger_sum}")
    return 1 if differences else 0


def _credits(ns: argparse.Namespace) -> int:
    """`studiox credits grant|void|show`: support operations through the credit service, recorded
    in the ledger with `cli:<operator>` as actor and the reason given."""
    import asyncio
    import getpass
    from datetime import datetime

    import grpc

    from services.kit.clients import ServiceChannels
    from studiox.credit.v1 import credit_pb2, credit_pb2_grpc

    settings = _settings("credits")
    _require_service(settings, "credit")
    actor = f"cli:{ns.actor or getpass.getuser()}"
    request: object
    if ns.credits_command == "grant":
        grant = credit_pb2.GrantCreditsRequest(
            user_id=ns.user,
            amount=ns.amount,
            category=ns.category,
            reason=ns.reason,
            expires_in=ns.expires_in or "",
            idempotency_key=ns.key or "",
        )
        if ns.priority is not None:
            grant.priority = ns.priority
        if ns.expires_at:
            try:
                moment = datetime.fromisoformat(ns.expires_at.replace("Z", "+00:00"))
            except ValueError:
                raise CommandError(
                    f"--expires-at is not an ISO 8601 time: {ns.expires_at}"
                ) from None
            if moment.tzinfo is None:
                raise CommandError("--expires-at needs a time zone (e.g. 2026-12-31T23:59:00Z)")
            grant.expires_at.FromDatetime(moment)
        request = credit_pb2.AdminGrantCreditsRequest(request=grant, actor=actor)
    elif ns.credits_command == "void":
        void = credit_pb2.VoidGrantRequest(
            grant_id=ns.grant, reason=ns.reason, idempotency_key=ns.key or ""
        )
        request = credit_pb2.AdminVoidGrantRequest(request=void, actor=actor)
    else:
        request = credit_pb2.AdminShowAccountRequest(
            request=credit_pb2.ShowAccountRequest(user_id=ns.user)
        )

    async def call() -> object:
        channels = ServiceChannels(settings)
        try:
            stub = credit_pb2_grpc.CreditInternalServiceStub(channels.channel("credit"))
            method = {
                "grant": stub.AdminGrantCredits,
                "void": stub.AdminVoidGrant,
                "show": stub.AdminShowAccount,
            }[ns.credits_command]
            wrapped = await method(request, timeout=30)
            return wrapped.response
        finally:
            await channels.close()

    try:
        reply = asyncio.run(call())
    except grpc.aio.AioRpcError as err:
        print(f"studiox credits {ns.credits_command}: {err.details()}", file=sys.stderr)
        return 1
    print("\n".join(_credits_report(ns.credits_command, reply)))
    return 0


def _credits_report(command: str, reply: object) -> list[str]:
    from google.protobuf.json_format import MessageToDict

    from studiox.credit.v1 import credit_pb2

    if isinstance(reply, credit_pb2.GrantCreditsResponse):
        state = "granted" if reply.applied else "already granted (same key)"
        expires = (
            reply.grant.expires_at.ToJsonString() if reply.grant.HasField("expires_at") else "never"
        )
        return [
            f"{state}: grant {reply.grant.id} ({reply.grant.category}, {reply.grant.amount} "
            f"credits, priority {reply.grant.priority}, expires {expires}); "
            f"balance {reply.remaining_credits}"
        ]
    if isinstance(reply, credit_pb2.VoidGrantResponse):
        state = "voided" if reply.applied else "already voided"
        return [f"{state}: {-reply.entry.amount} credits; balance {reply.remaining_credits}"]
    assert isinstance(reply, credit_pb2.ShowAccountResponse)
    c = reply.credits
    lines = [
        f"{c.user_id}: {c.current_credits} credits (allowance {c.allowance_credits}, purchased "
        f"{c.purchased_credits}, bonus {c.bonus_credits}), owed {c.owed_credits}, plan "
        f"{c.plan_name}, resets {c.credit_reset_at.ToJsonString()}",
        "grants:",
    ]
    for g in reply.grants:
        expires = g.expires_at.ToJsonString() if g.HasField("expires_at") else "never"
        closed = f" closed {g.closed_reason}" if g.closed_reason else ""
        lines.append(
            f"  {g.id:>8} {g.category:<12} {g.remaining:>6}/{g.amount:<6} priority {g.priority}"
            f" expires {expires}{closed}"
        )
    lines.append("entries (newest first):")
    for audited in reply.entries:
        e = MessageToDict(audited.entry, preserving_proto_field_name=True)
        who = f" by {audited.actor}: {audited.reason}" if audited.actor else ""
        lines.append(
            f"  {e['id']:>8} {e.get('created_at', '')} {e.get('type', ''):<16}"
            f" {audited.entry.amount:>6} {audited.entry.description}{who}"
        )
    return lines


def _jobs_run(ns: argparse.Namespace) -> int:
    import asyncio

    import sqlalchemy.exc

    from services.kit.clients import ServiceChannels
    from services.kit.db import Database
    from services.kit.logs import configure_logging
    from services.scheduler.config import SchedulerConfig
    from services.scheduler.jobs import JobRun, JobRunner, Jobs

    settings = _settings("jobs")
    _require_database(settings)
    _require_service(settings, JOB_SERVICES[ns.job])
    configure_logging("jobs", settings.log_level, "text", stream=sys.stderr)
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

    try:
        result = asyncio.run(run())
    except sqlalchemy.exc.DBAPIError as exc:
        # e.g. the scheduler's tables do not exist yet (`studiox migrate scheduler`).
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        raise CommandError(f"recording the job run failed: {reason}") from None
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
    dev_sub.add_parser("prometheus", help="run Prometheus against the local stack (OBSERVE=1)")
    dev_sub.add_parser("banner", help="wait for /health and print the ready banner")
    dev_sub.add_parser("stripe", help="run the local Stripe (API, checkout pages, webhooks)")
    pay = dev_sub.add_parser(
        "pay", help="act on a local checkout page: pay (test card 4242), decline, or authenticate"
    )
    pay.add_argument(
        "target",
        help="the checkoutUrl, a Checkout Session id (cs_test_…), or - to read the purchase or "
        "plan-change answer from stdin",
    )
    outcome = pay.add_mutually_exclusive_group()
    outcome.add_argument("--decline", action="store_true", help="the card is declined")
    outcome.add_argument(
        "--authenticate", action="store_true", help="pay with a card that asks for 3-D Secure"
    )
    clock = dev_sub.add_parser(
        "advance-clock",
        help="end the billing period of every live subscription on the local Stripe (renewals)",
    )
    clock.add_argument("--decline", action="store_true", help="the renewal payment fails")
    clock.add_argument("--user", help="only this user's subscriptions")
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

    credits = sub.add_parser(
        "credits", help="support operations on credits (recorded with actor and reason)"
    )
    credits_sub = credits.add_subparsers(dest="credits_command", required=True)
    give = credits_sub.add_parser("grant", help="grant promotional or compensation credits")
    give.add_argument("--user", required=True, help="user id")
    give.add_argument("--amount", required=True, type=int)
    give.add_argument("--reason", required=True, help="why (kept in the ledger)")
    give.add_argument("--category", choices=["promotional", "compensation"], default="promotional")
    expiry = give.add_mutually_exclusive_group()
    expiry.add_argument("--expires-at", help="ISO 8601 time with a zone, e.g. 2026-12-31T23:59Z")
    expiry.add_argument("--expires-in", help="a duration: 30d, 12h, 2w, P30D")
    give.add_argument("--priority", type=int, help="spending priority, lower first (0..1000)")
    give.add_argument("--key", help="idempotency key: repeating it returns the first grant")
    give.add_argument("--actor", help="who you are (default: your login name)")
    void = credits_sub.add_parser("void", help="void what is left of a grant")
    void.add_argument("--grant", required=True, help="grant id (from `credits show`)")
    void.add_argument("--reason", required=True)
    void.add_argument("--key", help="idempotency key")
    void.add_argument("--actor", help="who you are (default: your login name)")
    show = credits_sub.add_parser("show", help="balances, grants and recent entries of a user")
    show.add_argument("--user", required=True)
    show.set_defaults(actor=None)
    credits.set_defaults(func=_credits)

    jobs = sub.add_parser("jobs", help="scheduler jobs")
    jobs_sub = jobs.add_subparsers(dest="jobs_command", required=True)
    run_job = jobs_sub.add_parser(
        "run", help="run a job now, through the scheduler's own code path (recorded in job_runs)"
    )
    run_job.add_argument("job", choices=list(JOB_SERVICES))
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

    from services.worker.main import add_arguments as worker_arguments

    worker = sub.add_parser(
        "worker", help="process tasks: claim, run a processor per type, report (docs/WORKERS.md)"
    )
    worker_arguments(worker)
    worker.set_defaults(func=_worker)

    probe = sub.add_parser("probe", help="gRPC health check of a service; exit 0 when SERVING")
    probe.add_argument("address", help="host:port")
    probe.add_argument("--service", default="", help="service name (default: the whole server)")
    probe.add_argument("--timeout", type=float, default=3.0)
    probe.set_defaults(func=_probe)
    return parser


def main(argv: list[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    try:
        return int(ns.func(ns) or 0)
    except CommandError as exc:
        print(f"studiox {ns.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
