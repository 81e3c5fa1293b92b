"""The machine's speed for Python alone, sampled through a bench run.

The same code has cost two to three times the CPU per request on one machine as on another, and
on one machine a fixed piece of work took 36-39 ms of CPU in one minute and 65-75 ms in the next,
while the host reported next to no steal (docs/PERFORMANCE.md, Phase 3, item 25). A run's figures
are only as fast as the machine was while they were taken; these samples say how fast that was.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Sequence
from typing import Any

# One sample every SAMPLE_SECONDS costs the run under 1 % of one core (a sample took 34-82 ms of
# CPU on the slowest machine yet measured).
SAMPLE_SECONDS = 10.0


def reference_work() -> int:
    """A fixed piece of interpreter work of the kinds a request costs a service (small dicts,
    f-strings, lookups, arithmetic), and nothing else: no system call, no other process."""
    total = 0
    for i in range(100_000):
        row: dict[str, Any] = {"id": i, "user": f"user_{i % 97}", "cost": i % 13}
        total += len(row["user"]) + row["cost"]
    return total


def reference_ms() -> float:
    """CPU milliseconds of this thread for one `reference_work`: CPU time, not wall time, so a
    loaded machine's queue for a core is not in it, while a host that runs the virtual CPU slower
    (or takes it away without saying so) is."""
    started = time.thread_time()
    reference_work()
    return (time.thread_time() - started) * 1000


class SpeedSampler:
    """`reference_ms` every `every` seconds on a thread of its own, from `start` to `stop`."""

    def __init__(self, every: float = SAMPLE_SECONDS) -> None:
        self.every = every
        self.samples: list[float] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-speed", daemon=True)

    def start(self) -> SpeedSampler:
        self._thread.start()
        return self

    def stop(self) -> list[float]:
        self._stopping.set()
        self._thread.join()
        return list(self.samples)

    def _run(self) -> None:
        while True:
            self.samples.append(reference_ms())
            if self._stopping.wait(self.every):
                return


def speed_note(samples: Sequence[float]) -> str | None:
    """The samples as a line of a report's Machine section (None without any)."""
    if not samples:
        return None
    return (
        f"- Python alone during the run: {statistics.median(samples):.0f} ms of CPU for "
        f"bench/speed.py's `reference_work` (median of {len(samples)} samples, one every "
        f"{SAMPLE_SECONDS:.0f} s; fastest {min(samples):.0f}, slowest {max(samples):.0f} ms), "
        "the speed of a core for the interpreter while the figures were taken: compare it before "
        "comparing two runs (Phase 3, item 25, below)"
    )
