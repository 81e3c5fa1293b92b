"""The whole stack as real processes (services, scheduler, Envoy, and embedded PostgreSQL unless a
database URL is given), started with the same commands `make run` uses. Unlike `make run`, each
process is started here on its own so tests can stop, kill and restart one.

Whatever happens to a test, what it started stops: each process leads its own process group, which
is signalled whole; closing a stack then ends anything still carrying its state folder; and
`reap_session` (a session finalizer, atexit, SIGTERM) ends every process the test session started,
orphans included (the session is their subreaper)."""

from __future__ import annotations

import atexit
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
import psutil

from devstack.stack import (
    READY_POLL_SECONDS,
    REPLICA_PORT_STEP,
    Process,
    StackSettings,
    child_environment,
    make_database,
    processes,
    stack_ready,
)
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


def stack_environment(
    state_dir: Path, database_url: str | None, workers: int = 1
) -> dict[str, str]:
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
        # ... and no demo worker: tests that want one start it themselves (tests/e2e/test_worker.py).
        "STUDIOX_DEV_WORKER": "0",
        # Where the local Stripe listens when it runs (no STRIPE_SECRET_KEY given).
        "STUDIOX_DEV_STRIPE_PORT": str(free_port()),
        # ... and the local webhook receiver (when WEBHOOK_ENDPOINTS is not given).
        "STUDIOX_DEV_WEBHOOKS_PORT": str(free_port()),
        # Every test client is 127.0.0.1; the limiter has its own test (test_gateway_limits).
        "GATEWAY_RATE_LIMIT_RPS": "0",
        # One process per service (`make run` starts one per core): the tests' load is light, and
        # tests stop or kill "the" credit process by name. test_replicas and the bench run more.
        "SERVICE_WORKERS": str(workers),
    }
    for name in SERVICE_NAMES:
        # Every worker's port reserved, not only the first (devstack.stack.replica_endpoints).
        port = free_port(spaced=REPLICA_PORT_STEP, count=workers)
        env[f"{name.upper()}_SERVICE_ADDR"] = f"127.0.0.1:{port}"
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
        workers = int(self.extra_env.get("SERVICE_WORKERS", "1"))
        overrides = {
            **stack_environment(self.root / "state", self.database_url, workers),
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
        make_database(self.settings, timeout)
        # All at once: the services import their modules while PostgreSQL initializes and starts.
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
        return stop_group(self.procs.pop(name), sig, timeout)

    def kill_process(self, name: str) -> int:
        return self.stop_process(name, signal.SIGKILL)

    def wait_healthy(self, timeout: float = 60) -> None:
        """Until every service sees all five SERVING and /health answers 200 (devstack's ready)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if stack_ready(self.settings):
                return
            time.sleep(READY_POLL_SECONDS)
        try:
            last: object = httpx.get(f"{self.base_url}/health", timeout=3).text
        except httpx.HTTPError as exc:
            last = exc
        raise TimeoutError(f"stack not ready after {timeout}s: {last!r}\n{self.logs_tail()}")

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
        try:
            # Services first, database last, as an operator would.
            for name in [n for n in self.commands if n != "postgres"] + ["postgres"]:
                if name in self.procs:
                    self.stop_process(name)
        finally:
            reap(self.root)
            for log in self._logs.values():
                log.close()


def stop_group(
    proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 20
) -> int:
    """Signal a process started with start_new_session=True and its whole group; SIGKILL the group
    after `timeout`."""
    with_group(proc.pid, sig)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with_group(proc.pid, signal.SIGKILL)
        return proc.wait()
    finally:
        with_group(proc.pid, signal.SIGKILL)  # whatever the leader left behind in its group


def with_group(pid: int, sig: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def processes_of(root: Path) -> list[psutil.Process]:
    """Live processes that belong to a stack in `root`: its state folder in their environment
    (every process devstack starts gets STUDIOX_STATE_DIR) or in their command line (PostgreSQL)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.pid == os.getpid() or proc.status() == psutil.STATUS_ZOMBIE:
                continue
            state = proc.environ().get("STUDIOX_STATE_DIR", "")
            if state.startswith(str(root)) or any(str(root) in part for part in proc.cmdline()):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def reap(root: Path, grace: float = 10) -> list[str]:
    """End every process left from a stack in `root` (SIGTERM, then SIGKILL); their names."""
    return _terminate(processes_of(root), grace)


def _terminate(procs: list[psutil.Process], grace: float) -> list[str]:
    names = []
    for proc in procs:
        with _gone():
            names.append(" ".join(proc.cmdline()[:4]))
            proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=grace)
    for proc in alive:
        with _gone():
            proc.kill()
    psutil.wait_procs(alive, timeout=5)
    return names


def _gone() -> suppress:
    return suppress(psutil.NoSuchProcess, psutil.AccessDenied)


_PR_SET_CHILD_SUBREAPER = 36
_adopting: list[bool] = []


def adopt_orphans() -> None:
    """Make this process the subreaper of everything it starts, so that processes orphaned by a
    killed parent (honcho's children, say) stay its descendants, for reap_session to find. Then
    register reap_session for the interpreter's exit and for SIGTERM (e.g. `timeout` ending
    pytest), which would otherwise skip every finalizer."""
    if _adopting:
        return
    _adopting.append(True)
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    atexit.register(reap_session)
    if threading.current_thread() is threading.main_thread() and (
        signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    ):
        signal.signal(signal.SIGTERM, _reap_and_die)


def reap_session(grace: float = 10) -> list[str]:
    """End every process this test session started and that is still running; their names."""
    names = _terminate(psutil.Process().children(recursive=True), grace)
    with suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG) != (0, 0):  # adopted orphans that ended: no zombies
            pass
    return names


def _reap_and_die(signum: int, _frame: object) -> None:
    reap_session()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
