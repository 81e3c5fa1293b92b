"""CPU seconds spent by each process of the stack while a load runs: what bounds a figure."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import psutil


def _tree_cpu(pid: int) -> float:
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
        except psutil.NoSuchProcess:
            continue
    return total


@dataclass
class CpuUse:
    seconds: dict[str, float] = field(default_factory=dict)

    def per_request_us(self, requests: int) -> dict[str, float]:
        """Per service (its processes "credit.1", "credit.2", ... summed)."""
        summed: dict[str, float] = {}
        for name, s in self.seconds.items():
            service = name.split(".")[0]
            summed[service] = summed.get(service, 0.0) + s
        return {name: 1e6 * s / max(requests, 1) for name, s in summed.items() if s > 0.01}

    def busiest_core_share(self, wall_seconds: float) -> tuple[str, float]:
        """The process that used the most CPU, and the share of one core it used: a share near 1
        is a saturated Python process (one core at most)."""
        if not self.seconds:
            return ("-", 0.0)
        name, s = max(self.seconds.items(), key=lambda item: item[1])
        return (name, s / max(wall_seconds, 1e-9))


@contextmanager
def measure(processes: dict[str, subprocess.Popen[bytes]]) -> Iterator[CpuUse]:
    """PostgreSQL's backends come and go; they are counted through the postmaster's tree, whose
    exited children are included in its children_* times only once reaped, so its figure is a
    lower bound."""
    use = CpuUse()
    before = {name: _tree_cpu(p.pid) for name, p in processes.items()}
    yield use
    for name, proc in processes.items():
        use.seconds[name] = _tree_cpu(proc.pid) - before[name]
