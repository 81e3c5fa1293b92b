"""The bench report's reading of the machine a run had (bench/report.py): the load average it
began with, and the CPU time the host took from it (steal)."""

from __future__ import annotations

import os
from pathlib import Path

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


def test_steal_is_read_from_proc_stat_and_reported_as_a_share_of_the_run(tmp_path: Path) -> None:
    tick = os.sysconf("SC_CLK_TCK")
    stat = tmp_path / "stat"
    # user nice system idle iowait irq softirq steal guest guest_nice, in ticks
    stat.write_text(f"cpu  {70 * tick} 0 {10 * tick} {15 * tick} 0 0 0 {5 * tick} 0 0\ncpu0 1\n")
    start = CpuCounters.read(stat)
    assert start == CpuCounters(total=100.0, steal=5.0)
    end = CpuCounters(total=300.0, steal=9.0)
    line = steal_note(start, end)
    assert line is not None
    assert "(steal): 4.0 s of 200 CPU-seconds (2.0%)" in line


def test_no_steal_line_without_both_readings(tmp_path: Path) -> None:
    assert CpuCounters.read(tmp_path / "missing") is None
    (tmp_path / "short").write_text("cpu 1 2 3\n")
    assert CpuCounters.read(tmp_path / "short") is None
    assert steal_note(None, CpuCounters(1.0, 0.0)) is None
    assert steal_note(CpuCounters(1.0, 0.0), None) is None
