"""`make run`'s command from nothing: ready banner, healthy, and Ctrl-C leaves no process behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil

from tests.support.dirs import server_tempdir
from tests.support.stack import patched_environ, stack_environment

READY_WITHIN_SECONDS = 15


def _processes_of(state_dir: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.status() == psutil.STATUS_ZOMBIE or proc.pid == os.getpid():
                continue
            if proc.environ().get("STUDIOX_STATE_DIR") == str(state_dir) or any(
                str(state_dir) in part for part in proc.cmdline()
            ):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def test_dev_run_starts_from_nothing_and_ctrl_c_stops_everything() -> None:
    with server_tempdir("devrun") as folder:
        _run_and_interrupt(folder / "state")


def _run_and_interrupt(state_dir: Path) -> None:
    env_overrides = stack_environment(state_dir, database_url=None)
    with patched_environ(env_overrides, remove=("DATABASE_URL",)):
        env = dict(os.environ)
    port = env_overrides["PORT"]

    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "dev", "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "StudioX is ready" in line:
                ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert ready.wait(60), "no ready banner:\n" + "".join(lines[-40:])
        elapsed = time.monotonic() - started
        assert elapsed < READY_WITHIN_SECONDS, f"ready after {elapsed:.1f}s"
        assert (state_dir / "pgdata" / "PG_VERSION").exists()
        health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
        assert health.status_code == 200
        assert _processes_of(state_dir), "the stack's processes should be visible while it runs"

        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        assert proc.wait(timeout=30) == 0 or proc.returncode is not None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(5)
    deadline = time.monotonic() + 10
    while _processes_of(state_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _processes_of(state_dir) == []
    output = "".join(lines)
    assert "Traceback" not in output, output[-3000:]
