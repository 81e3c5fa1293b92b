"""The local stack behind `make run`: embedded PostgreSQL (unless DATABASE_URL is set), the five
services, the scheduler and Envoy, run by honcho's process manager, with a ready banner.

Every process starts at once and each imports only what it needs (`python -m devstack <part>`,
the services' own `python -m services.<svc>`): on a small machine a cold start's time is mostly
interpreters importing modules, so this module imports its heavier helpers where they are used."""

from __future__ import annotations

import os
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import AliasChoices, Field

from devstack.postgres import EmbeddedPostgres, wait_until_ready
from services.kit.settings import SERVICE_NAMES, ServiceName, Settings, startup_settings

ROOT = Path(__file__).resolve().parent.parent
REPLICA_PORT_STEP = 100
MAX_WORKERS = 8
# Between two readiness checks while the stack starts.
READY_POLL_SECONDS = 0.05


def default_workers() -> int:
    """A process per service for every two cores: a Python process uses one core at most, and on
    the one machine `make run` uses, Envoy and PostgreSQL need the other half (docs/DECISIONS.md,
    entry 109: on 2 cores a second process per service lost throughput, memory and start-up)."""
    return max(1, min((os.cpu_count() or 1) // 2, MAX_WORKERS))


class StackSettings(Settings):
    state_dir: Path = Field(default=ROOT / ".state", validation_alias="STUDIOX_STATE_DIR")
    embedded_pg_port: int = 54329
    ready_timeout_seconds: float = 60.0
    # Processes per service (`SERVICE_WORKERS=2 make run`; REPLICAS is its older name), each on
    # its own port and so its own Envoy endpoint (docs/DECISIONS.md); the scheduler's processes
    # elect one leader. Default: one per two cores, at most 8 (the port layout: REPLICA_PORT_STEP
    # blocks below the metrics ports at +1000).
    replicas: int = Field(
        default_factory=default_workers,
        ge=1,
        le=MAX_WORKERS,
        validation_alias=AliasChoices("SERVICE_WORKERS", "REPLICAS"),
    )
    # Set by `dev run` for its children, which see the embedded server's URL as DATABASE_URL.
    embedded_pg: bool | None = Field(default=None, validation_alias="STUDIOX_EMBEDDED_PG")
    # `OBSERVE=1 make run`: metrics on every process and a Prometheus scraping them (observe.py).
    observe: bool = Field(default=False, validation_alias="OBSERVE")
    # A worker with the DEMO processors, so tasks finish locally (STUDIOX_DEV_WORKER=0: none).
    dev_worker: bool = Field(default=True, validation_alias="STUDIOX_DEV_WORKER")
    # The local Stripe (devstack/stripe_dev.py): by default in development without
    # STRIPE_SECRET_KEY; `dev run` sets it to 1 for its children (which then see a key).
    dev_stripe: bool | None = Field(default=None, validation_alias="STUDIOX_DEV_STRIPE")
    dev_stripe_port: int = Field(default=12111, validation_alias="STUDIOX_DEV_STRIPE_PORT")
    # The local receiver of outbound webhooks (devstack/webhook_receiver.py): in development when
    # WEBHOOK_ENDPOINTS is not set; the services deliver to it and it logs what arrives.
    dev_webhooks_port: int = Field(default=12112, validation_alias="STUDIOX_DEV_WEBHOOKS_PORT")

    @property
    def uses_embedded_postgres(self) -> bool:
        if self.embedded_pg is not None:
            return self.embedded_pg
        return "database_url" not in self.model_fields_set

    @property
    def runs_demo_worker(self) -> bool:
        return self.dev_worker and not self.is_production

    @property
    def runs_dev_stripe(self) -> bool:
        keyless = not (self.stripe_secret_key and self.stripe_secret_key.get_secret_value())
        wanted = keyless if self.dev_stripe is None else self.dev_stripe
        return wanted and self.app_env == "development"

    @property
    def runs_dev_webhooks(self) -> bool:
        return self.app_env == "development" and not self.webhook_endpoints

    @property
    def dev_webhooks_url(self) -> str:
        return f"http://127.0.0.1:{self.dev_webhooks_port}/webhooks"

    @property
    def embedded(self) -> EmbeddedPostgres:
        return EmbeddedPostgres(self.state_dir / "pgdata", self.embedded_pg_port)


@dataclass(frozen=True)
class Process:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)

    @property
    def command(self) -> str:
        # honcho runs commands through sh; exec lets the process itself receive its signals.
        return "exec " + shlex.join(self.argv)


def studiox(*args: str) -> list[str]:
    return [sys.executable, "-m", "studiox_cli", *args]


def devstack_command(*args: str) -> list[str]:
    """A part of the stack through devstack/__main__.py: `studiox dev <part>`'s work without the
    whole command line's imports (~0.6 s of CPU per process)."""
    return [sys.executable, "-m", "devstack", *args]


def service_argv(settings: StackSettings, name: ServiceName) -> list[str]:
    """A service process: it imports its modules while the database starts, waits for it, migrates
    its schema (in a child process) and serves."""
    wait = f"{settings.ready_timeout_seconds:g}"
    return [
        sys.executable,
        "-m",
        f"services.{name}",
        "migrate-and-serve",
        "--wait-for-database",
        wait,
    ]


def replica_endpoints(settings: StackSettings, service: ServiceName) -> list[str]:
    """REPLICAS copies of a service on consecutive port blocks (50052, 50152, ...)."""
    host, port = settings.service_endpoints(service)[0].rsplit(":", 1)
    return [f"{host}:{int(port) + REPLICA_PORT_STEP * i}" for i in range(settings.replicas)]


def processes(settings: StackSettings) -> list[Process]:
    from devstack import observe

    procs = []
    if settings.uses_embedded_postgres:
        # initdb (the first time) and the server, as the services start: they wait for it.
        embedded = settings.embedded
        postgres = devstack_command("postgres", str(embedded.data_dir), str(embedded.port))
        procs.append(Process("postgres", postgres))
    for name in SERVICE_NAMES:
        for i, endpoint in enumerate(replica_endpoints(settings, name)):
            label = name if settings.replicas == 1 else f"{name}.{i + 1}"
            port = endpoint.rsplit(":", 1)[1]
            env = {"GRPC_PORT": port}
            if settings.observe:
                env["METRICS_PORT"] = str(observe.metrics_port(endpoint))
            procs.append(Process(label, service_argv(settings, name), env))
    gateway_env = {}
    if settings.observe:
        gateway_env["GATEWAY_METRICS_PORT"] = str(observe.gateway_metrics_port(settings))
        procs.append(Process("prometheus", devstack_command("prometheus")))
    procs.append(Process("gateway", devstack_command("gateway"), gateway_env))
    if settings.runs_demo_worker:
        procs.append(Process("worker", studiox("worker", "--demo")))
    if settings.runs_dev_stripe:
        procs.append(Process("stripe", devstack_command("stripe")))
    if settings.runs_dev_webhooks:
        procs.append(Process("webhooks", devstack_command("webhooks")))
    return procs


def stack_addresses(settings: StackSettings) -> dict[str, str]:
    """Where the stack's processes are, beyond what the environment says: the embedded server's URL
    as `database_url`, every replica's address. Keys are settings fields (upper-cased: variables)."""
    found = {}
    if settings.uses_embedded_postgres:
        found["database_url"] = settings.embedded.url()
    if settings.replicas > 1:
        # Envoy balances over every replica; services call each other round-robin.
        for name in SERVICE_NAMES:
            found[f"{name}_service_addr"] = ",".join(replica_endpoints(settings, name))
    return found


def local_settings(process: str = "cli") -> StackSettings:
    """The settings a `studiox` command uses: the same environment and `.env` as `make run`, and
    the stack's processes where `make run` put them (the one way every command finds the stack).
    With DATABASE_URL and *_SERVICE_ADDR set, as in a deployment, those are used as they are."""
    settings = startup_settings(process, check_secrets=False, kind=StackSettings)
    # An address that is given is not second-guessed: no replica ports are derived from it.
    derived = stack_addresses(settings).items()
    found: dict[str, object] = {k: v for k, v in derived if k not in settings.model_fields_set}
    found["embedded_pg"] = settings.uses_embedded_postgres
    # Copied before any cached property (the database URLs) is computed from the old value.
    return settings.model_copy(update=found)


def child_environment(settings: StackSettings) -> dict[str, str]:
    env = dict(os.environ)
    env["STUDIOX_EMBEDDED_PG"] = "1" if settings.uses_embedded_postgres else "0"
    env.update({name.upper(): value for name, value in stack_addresses(settings).items()})
    env.setdefault("LOG_FORMAT", "text")
    env["STUDIOX_STATE_DIR"] = str(settings.state_dir)
    if settings.runs_dev_stripe:
        from devstack import stripe_dev

        env["STUDIOX_DEV_STRIPE"] = "1"
        env.update(stripe_dev.service_environment(settings.dev_stripe_port))
    if settings.runs_dev_webhooks:
        env["WEBHOOK_ENDPOINTS"] = settings.dev_webhooks_url
    if settings.runs_demo_worker:
        # The worker claims for itself; a scheduler claiming too would hold tasks nobody works on
        # until their lease ran out. The scheduler keeps only the lease upkeep.
        env["SCHEDULER_CLAIM_LIMIT"] = "0"
    # Services trust this key only when APP_ENV=development (see services.kit.auth), and refuse to
    # start in production with it set.
    if not settings.is_production:
        from devstack.dev_tokens import ensure_keypair

        env["DEV_JWT_PUBLIC_KEY_FILE"] = str(ensure_keypair(settings.state_dir))
    return env


def gateway_config_path(settings: StackSettings) -> Path:
    return settings.state_dir / "envoy.yaml"


def render_gateway(settings: StackSettings) -> Path:
    from gateway.config import from_settings, write

    return write(from_settings(settings), gateway_config_path(settings))


def make_database(settings: StackSettings, timeout: float) -> None:
    """The stack's database on a given server (DATABASE_URL), made once before the services start:
    they only wait for their database, they never create it. The embedded server's is made with
    the server, by its own process (devstack.postgres.EmbeddedPostgres.init)."""
    if not settings.uses_embedded_postgres:
        wait_until_ready(settings.database_url, timeout=timeout)


def run(settings: StackSettings) -> int:
    """Start everything under honcho; Ctrl-C (or SIGTERM) stops every process."""
    from honcho.manager import Manager

    settings.state_dir.mkdir(parents=True, exist_ok=True)
    make_database(settings, settings.ready_timeout_seconds)
    env = child_environment(settings)
    manager = Manager()
    for proc in [*processes(settings), Process("ready", devstack_command("banner"))]:
        manager.add_process(proc.name, proc.command, env={**env, **proc.env}, cwd=str(ROOT))
    manager.loop()
    return int(manager.returncode or 0)


def run_service(settings: StackSettings, name: ServiceName) -> None:
    """Wait for the database (creating it if missing), then become the service (migrating its
    schema first)."""
    wait_until_ready(settings.database_url, timeout=settings.ready_timeout_seconds)
    argv = service_argv(settings, name)
    os.execv(argv[0], argv)


def run_gateway(settings: StackSettings) -> None:
    from gateway.config import exec_envoy

    exec_envoy(render_gateway(settings))


def run_prometheus(settings: StackSettings) -> None:
    from devstack import observe

    endpoints = {name: replica_endpoints(settings, name) for name in SERVICE_NAMES}
    observe.run_prometheus(settings, settings.state_dir, endpoints)


def run_dev_webhooks(settings: StackSettings) -> None:
    from devstack import webhook_receiver
    from services.kit.logs import configure_logging

    configure_logging("webhooks", settings.log_level, settings.log_format)
    webhook_receiver.run(
        settings.dev_webhooks_port, settings.webhook_signing_secret.get_secret_value()
    )


def run_dev_stripe(settings: StackSettings) -> None:
    from devstack import stripe_dev
    from services.kit.logs import configure_logging

    configure_logging("stripe", settings.log_level, settings.log_format)
    stripe_dev.run(settings.dev_stripe_port, settings.port, settings.state_dir)


def stack_ready(settings: StackSettings) -> bool:
    """Every service process sees all five SERVING, and Envoy answers /health 200. One 200 is not
    enough: Envoy sends /health to any service's StatusService, round robin, and each checks the
    others over its own channels; asking each one first means the next /health finds them warm."""
    import grpc
    import httpx

    from studiox.status.v1 import status_pb2, status_pb2_grpc

    for name in SERVICE_NAMES:
        for endpoint in replica_endpoints(settings, name):
            with grpc.insecure_channel(endpoint) as channel:
                try:
                    reply = status_pb2_grpc.StatusServiceStub(channel).GetStatus(
                        status_pb2.GetStatusRequest(), timeout=3
                    )
                except grpc.RpcError:
                    return False
            if reply.status != "ok":
                return False
    try:
        # 127.0.0.1, where Envoy listens: `localhost` may reach whatever holds the port on ::1.
        health = httpx.get(f"http://127.0.0.1:{settings.port}/health", timeout=3)
    except httpx.HTTPError:
        return False
    return health.status_code == 200


def wait_healthy(settings: StackSettings, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stack_ready(settings):
            return True
        time.sleep(READY_POLL_SECONDS)
    return False


def running_lines(settings: StackSettings, base: str) -> list[str]:
    """Banner lines for the API docs, the worker and payments."""
    from devstack import stripe_dev
    from devstack.checkout_page import TEST_CARDS

    lines = []
    if (ROOT / "gateway" / "docs" / "index.html").exists():
        lines.append(f"  API docs: {base}/docs")
    if settings.runs_demo_worker:
        lines.append("  worker: DEMO processors (placeholder results; STUDIOX_DEV_WORKER=0: none)")
    if settings.runs_dev_stripe:
        page = f"http://localhost:{settings.dev_stripe_port}"
        lines += [
            f"  payments: local Stripe {stripe_dev.api_base(settings.dev_stripe_port)}, "
            "webhooks signed to /api/billing/webhook",
            f"    checkout pages: {page}/   script: studiox dev pay <checkoutUrl> [--decline]",
            "    renewal: studiox dev advance-clock [--decline]   test cards:",
            *(f"      {number}  {effect}" for number, effect, _ in TEST_CARDS),
        ]
    elif settings.stripe_secret_key is not None:
        lines.append(f"  payments: Stripe at {settings.stripe_api_base or 'api.stripe.com'}")
    if settings.webhook_endpoints or settings.runs_dev_webhooks:
        to = ", ".join(settings.webhook_endpoints) or settings.dev_webhooks_url
        lines.append(f"  webhooks: events delivered to {to} (log: webhooks; studiox webhooks list)")
    return lines


def banner(settings: StackSettings) -> int:
    from devstack import observe

    started = time.monotonic()
    base = f"http://localhost:{settings.port}"
    if not wait_healthy(settings, settings.ready_timeout_seconds):
        print(
            f"stack did not become healthy within {settings.ready_timeout_seconds:.0f}s", flush=True
        )
        return 1
    database = "embedded PostgreSQL" if settings.uses_embedded_postgres else "DATABASE_URL"
    print(
        "\n".join(
            [
                "",
                "=" * 60,
                f"  StudioX is ready on {base} (healthy after {time.monotonic() - started:.1f}s)",
                f"  health: {base}/health   plans: {base}/api/billing/plans",
                f"  database: {database}   Envoy admin: http://127.0.0.1:{settings.envoy_admin_port}",
                f"  processes per service (SERVICE_WORKERS): {settings.replicas}",
                *(
                    [f"  Prometheus (rules loaded): http://127.0.0.1:{observe.PROMETHEUS_PORT}"]
                    if settings.observe
                    else []
                ),
                *running_lines(settings, base),
                "  Ctrl-C stops everything.",
                "=" * 60,
            ]
        ),
        flush=True,
    )
    # Stay alive: honcho stops the whole stack when any of its processes exits.
    while True:
        time.sleep(3600)
