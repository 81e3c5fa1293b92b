"""What a test starts stops, even when its direct parent is gone: the session adopts orphans, and a
stack's leftovers are found by their state folder (tests/support/stack.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil

from tests.support.stack import adopt_orphans, processes_of, reap

# A parent that starts a long-lived child in its own session, prints its pid and exits at once,
# as honcho's children are left when honcho is killed.
ORPHAN_MAKER = """
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"],
                         start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(child.pid, flush=True)
"""


def test_an_orphan_of_the_session_is_found_and_reaped(tmp_path: Path) -> None:
    adopt_orphans()
    state = tmp_path / "state"
    maker = subprocess.run(
        [sys.executable, "-c", ORPHAN_MAKER],
        env={**os.environ, "STUDIOX_STATE_DIR": str(state)},
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    orphan = psutil.Process(int(maker.stdout))
    try:
        deadline = time.monotonic() + 5
        while orphan.ppid() != os.getpid() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert orphan.ppid() == os.getpid(), "the session should have adopted the orphan"
        assert [p.pid for p in processes_of(tmp_path)] == [orphan.pid]
        assert len(reap(tmp_path)) == 1
        assert processes_of(tmp_path) == []
        assert not orphan.is_running() or orphan.status() == psutil.STATUS_ZOMBIE
    finally:
        if orphan.is_running():
            orphan.kill()
