"""The bench report's reading of the machine a run had (bench/report.py): the load average it
began with, and the CPU time the host took from it (steal)."""

from __future__ import annotations

from types import SimpleNamespace

import psutil

from bench.report import CpuCounters, machine_notes, start_load_note, steal_note


def test_a_quiet_start_is_reported_as_quiet_whatever_ran_earlier() -> None:
    # 0.2 over the last minute; the 5- and 15-minute figures still carry an earlier run.
    line = next(x for x in machine_notes((0.2, 1.9, 2.7)) if x.startswith("- Load average"))
    assert "before the run: 0.2, 1.9, 2.7 (the machine was quiet as the run began)" in line
    assert "other work" not in line.split("at its end")[0]


def test_a_busy_start_says_so() -> None:
    assert start_load_note(2.5, 2) == "above the core count: other work shared the machine"
    assert start_load_note(1.5, 2) == "other work was running as the run began"
    assert start_load_note(1.0, 2) == "the machine was quiet as the run began"


def test_steal_is_read_from_the_systems_times_and_reported_as_a_share_of_the_run() -> None:
    times = psutil.cpu_times()._replace(
        user=70.0, nice=0.0, system=10.0, idle=15.0, iowait=0.0, irq=0.0, softirq=0.0, steal=5.0
    )
    start = CpuCounters.read(times)
    assert start == CpuCounters(total=100.0, steal=5.0)
    end = CpuCounters(total=300.0, steal=9.0)
    line = steal_note(start, end)
    assert line is not None
    assert "(steal): 4.0 s of 200 CPU-seconds (2.0%)" in line


def test_no_steal_line_without_both_readings() -> None:
    # A system whose times have no steal (psutil on macOS: user, nice, system, idle).
    assert CpuCounters.read(SimpleNamespace(user=1.0, nice=0.0, system=1.0, idle=1.0)) is None
    assert CpuCounters.read() is not None  # Linux, where the bench runs
    assert steal_note(None, CpuCounters(1.0, 0.0)) is None
    assert steal_note(CpuCounters(1.0, 0.0), None) is None
