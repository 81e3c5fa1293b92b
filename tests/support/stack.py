"""The whole stack as real processes (services, scheduler, Envoy, and embedded PostgreSQL unless a
database URL is given), started with the same commands `make run` uses. Unlike `make run`, each
process is started here on its own so tests can stop, kill and restart one."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

from devstack.stack import Process, StackSettings, child_environment, processes
from services.kit.settings import SERVICE_NAMES
from tests.support.cluster import INTERNAL_TOKEN
from tests.support.ports import free_port
from tests.support.tokens import AUTHORIZED_PARTY, DEFAULT_KEY, ISSUER


@contextmanager
def patched_environ(values: dict[str, str], remove: tuple[str, ...] = ()) -> Iterator[None]:
    saved = dict(os.environ)
    for key in remove:
        os.environ.pop(key, None)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def stack_environment(state_dir: Path, database_url: str | None) -> dict[str, str]:
    env = {
        "PORT": str(free_port()),
        "ENVOY_ADMIN_PORT": str(free_port()),
        "EMBEDDED_PG_PORT": str(free_port()),
        "STUDIOX_STATE_DIR": str(state_dir),
        "INTERNAL_SERVICE_TOKEN": INTERNAL_TOKEN,
        "APP_ENV": "development",
        "LOG_FORMAT": "json",
        "SHUTDOWN_GRACE_SECONDS": "5",
        "FRONTEND_URL": AUTHORIZED_PARTY,
        "CLERK_ISSUER": ISSUER,
        "CLERK_JWT_KEY": DEFAULT_KEY.public_pem,
        "CLERK_AUTHORIZED_PARTIES": AUTHORIZED_PARTY,
        # The tests drive task states themselves; the scheduler only keeps leases.
        "SCHEDULER_CLAIM_LIMIT": "0",
        # Every test client is 127.0.0.1; the limiter has its own test (test_gateway_limits).
        "GATEWAY_RATE_LIMIT_RPS": "0",
    }
    for name in SERVICE_NAMES:
        env[f"{name.upper()}_SERVICE_ADDR"] = f"127.0.0.1:{free_port()}"
    if database_url:
        env["DATABASE_URL"] = database_url
    return env


@dataclass
class Stack:
    root: Path
    database_url: str | None = None
    # More environment for every process (e.g. Stripe settings pointing at a local double).
    extra_env: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _logs: dict[str, IO[bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        overrides = {
            **stack_environment(self.root / "state", self.database_url),
            **self.extra_env,
        }
        with patched_environ(overrides, remove=() if self.database_url else ("DATABASE_URL",)):
            self.settings = StackSettings()
            self.env = child_environment(self.settings)
        self.commands: dict[str, Process] = {p.name: p for p in processes(self.settings)}
        self.base_url = f"http://127.0.0.1:{self.settings.port}"

    def start(self, timeout: float = 60) -> float:
        """Start every process; returns seconds until /health answered 200."""
        started = time.monotonic()
        if self.settings.uses_embedded_postgres:
            self.settings.embedded.init()
        for name in self.commands:
            self.start_process(name)
        self.wait_healthy(timeout)
        return time.monotonic() - started

    def start_process(self, name: str) -> None:
        log = (self.root / f"{name}.log").open("ab")
        self._logs[name] = log
        self.procs[name] = subprocess.Popen(
            self.commands[name].argv,
            env={**self.env, **self.commands[name].env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop_process(self, name: str, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        proc = self.procs.pop(name)
        if proc.poll() is None:
            proc.send_signal(sig)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()

    def kill_process(self, name: str) -> int:
        return self.stop_process(name, signal.SIGKILL)

    def wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                last = httpx.get(f"{self.base_url}/health", timeout=3)
                if last.status_code == 200:
                    return
            except httpx.HTTPError as exc:
                last = exc  # type: ignore[assignment]
            time.sleep(0.2)
        raise TimeoutError(f"stack not healthy after {timeout}s: {last!r}\n{self.logs_tail()}")

    def logs_tail(self, lines: int = 15) -> str:
        out = []
        for name in self.commands:
            path = self.root / f"{name}.log"
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {name}\n" + "\n".join(tail))
        return "\n".join(out)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=15)

    def close(self) -> None:
        # Services first, database last, as an operator would.
        for name in [n for n in self.commands if n != "postgres"] + ["postgres"]:
            if name in self.procs:
                self.stop_process(name)
        for log in self._logs.values():
            log.close()
