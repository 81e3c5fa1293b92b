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

from tests.support.dirs import server_tempdir
from tests.support.stack import (
    patched_environ,
    processes_of,
    reap,
    stack_environment,
    stop_group,
)

# From nothing (initdb, migrations, five services, Envoy): about 10 s on an idle 2-core machine;
# the margin is for a machine shared with other work (`make test` must pass beside a CPU hog).
READY_WITHIN_SECONDS = 30


def test_dev_run_starts_from_nothing_and_ctrl_c_stops_everything() -> None:
    with server_tempdir("devrun") as folder:
        try:
            _run_and_interrupt(folder / "state")
        finally:
            # Whatever failed above, nothing of this stack outlives the test.
            left = reap(folder)
        assert left == [], f"processes left running after Ctrl-C: {left}"


def _run_and_interrupt(state_dir: Path) -> None:
    env_overrides = stack_environment(state_dir, database_url=None)
    with patched_environ(env_overrides, remove=("DATABASE_URL",)):
        env = dict(os.environ)
    port = env_overrides["PORT"]

    started = time.monotonic()
    # Its own process group, as a terminal gives it: Ctrl-C reaches the group.
    proc = subprocess.Popen(
        [sys.executable, "-m", "studiox_cli", "dev", "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            lines.append(raw.decode(errors="replace"))
            if "StudioX is ready" in lines[-1]:
                ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert ready.wait(60), "no ready banner:\n" + "".join(lines[-40:])
        elapsed = time.monotonic() - started
        assert elapsed < READY_WITHIN_SECONDS, f"ready after {elapsed:.1f}s"
        assert (state_dir / "pgdata" / "PG_VERSION").exists()
        # The banner means ready: /health through Envoy answers 200, whichever service answers it.
        for _ in range(10):
            health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
            assert health.status_code == 200, health.text
        assert processes_of(state_dir), "the stack's processes should be visible while it runs"

        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends (honcho forwards it to every process)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            stop_group(proc, signal.SIGKILL)
        reader.join(5)
    deadline = time.monotonic() + 10
    while processes_of(state_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_of(state_dir) == []
    tracebacks = [line for line in lines if "Traceback" in line]
    assert tracebacks == [], "".join(tracebacks)[:3000]
