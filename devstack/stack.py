"""The local stack behind `make run`: embedded PostgreSQL (unless DATABASE_URL is set), the five
services, the scheduler and Envoy, run by honcho's process manager, with a ready banner."""

from __future__ import annotations

import os
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from pydantic import Field

from devstack.dev_tokens import ensure_keypair
from devstack.postgres import EmbeddedPostgres, wait_until_ready
from gateway.config import exec_envoy, from_settings, write
from services.kit.settings import SERVICE_NAMES, ServiceName, Settings

ROOT = Path(__file__).resolve().parent.parent
REPLICA_PORT_STEP = 100


class StackSettings(Settings):
    state_dir: Path = Field(default=ROOT / ".state", validation_alias="STUDIOX_STATE_DIR")
    embedded_pg_port: int = 54329
    ready_timeout_seconds: float = 60.0
    # Processes per service (`REPLICAS=2 make run`); the scheduler replicas elect one leader.
    replicas: int = Field(default=1, ge=1, le=8)
    # Set by `dev run` for its children, which see the embedded server's URL as DATABASE_URL.
    embedded_pg: bool | None = Field(default=None, validation_alias="STUDIOX_EMBEDDED_PG")

    @property
    def uses_embedded_postgres(self) -> bool:
        if self.embedded_pg is not None:
            return self.embedded_pg
        return "database_url" not in self.model_fields_set

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
    return [sys.executable, "-m", "services.cli", *args]


def replica_endpoints(settings: StackSettings, service: ServiceName) -> list[str]:
    """REPLICAS copies of a service on consecutive port blocks (50052, 50152, ...)."""
    host, port = settings.service_endpoints(service)[0].rsplit(":", 1)
    return [f"{host}:{int(port) + REPLICA_PORT_STEP * i}" for i in range(settings.replicas)]


def processes(settings: StackSettings) -> list[Process]:
    procs = []
    if settings.uses_embedded_postgres:
        procs.append(Process("postgres", studiox("dev", "postgres")))
    for name in SERVICE_NAMES:
        for i, endpoint in enumerate(replica_endpoints(settings, name)):
            label = name if settings.replicas == 1 else f"{name}.{i + 1}"
            port = endpoint.rsplit(":", 1)[1]
            procs.append(Process(label, studiox("dev", "service", name), {"GRPC_PORT": port}))
    procs.append(Process("gateway", studiox("dev", "gateway")))
    return procs


def child_environment(settings: StackSettings) -> dict[str, str]:
    env = dict(os.environ)
    env["STUDIOX_EMBEDDED_PG"] = "1" if settings.uses_embedded_postgres else "0"
    if settings.uses_embedded_postgres:
        env["DATABASE_URL"] = settings.embedded.url()
    env.setdefault("LOG_FORMAT", "text")
    env["STUDIOX_STATE_DIR"] = str(settings.state_dir)
    if settings.replicas > 1:
        # Envoy balances over every replica; services call each other round-robin.
        for name in SERVICE_NAMES:
            env[f"{name.upper()}_SERVICE_ADDR"] = ",".join(replica_endpoints(settings, name))
    # Services trust this key only when APP_ENV=development (see services.kit.auth).
    env["DEV_JWT_PUBLIC_KEY_FILE"] = str(ensure_keypair(settings.state_dir))
    return env


def gateway_config_path(settings: StackSettings) -> Path:
    return settings.state_dir / "envoy.yaml"


def render_gateway(settings: StackSettings) -> Path:
    return write(from_settings(settings), gateway_config_path(settings))


def run(settings: StackSettings) -> int:
    """Start everything under honcho; Ctrl-C (or SIGTERM) stops every process."""
    from honcho.manager import Manager

    settings.state_dir.mkdir(parents=True, exist_ok=True)
    if settings.uses_embedded_postgres:
        settings.embedded.init()
    env = child_environment(settings)
    manager = Manager()
    for proc in [*processes(settings), Process("ready", studiox("dev", "banner"))]:
        manager.add_process(proc.name, proc.command, env={**env, **proc.env}, cwd=str(ROOT))
    manager.loop()
    return int(manager.returncode or 0)


def run_service(settings: StackSettings, name: ServiceName) -> None:
    """Wait for the database, then become the service (migrating its schema first)."""
    wait_until_ready(settings.database_url, timeout=settings.ready_timeout_seconds)
    argv = [sys.executable, "-m", f"services.{name}", "migrate-and-serve"]
    os.execv(argv[0], argv)


def run_gateway(settings: StackSettings) -> None:
    exec_envoy(render_gateway(settings))


def wait_healthy(base_url: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/health", timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


def banner(settings: StackSettings) -> int:
    started = time.monotonic()
    base = f"http://localhost:{settings.port}"
    if not wait_healthy(base, settings.ready_timeout_seconds):
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
                f"  replicas per service: {settings.replicas}",
                "  Ctrl-C stops everything.",
                "=" * 60,
            ]
        ),
        flush=True,
    )
    # Stay alive: honcho stops the whole stack when any of its processes exits.
    while True:
        time.sleep(3600)
