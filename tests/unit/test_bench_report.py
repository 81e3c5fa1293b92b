"""The bench report's reading of the load average the run began with (bench/report.py)."""

from __future__ import annotations

from bench.report import machine_notes, start_load_note


def test_a_quiet_start_is_reported_as_quiet_whatever_ran_earlier() -> None:
    # 0.2 over the last minute; the 5- and 15-minute figures still carry an earlier run.
    line = next(x for x in machine_notes((0.2, 1.9, 2.7)) if x.startswith("- Load average"))
    assert "before the run: 0.2, 1.9, 2.7 (the machine was quiet as the run began)" in line
    assert "other work" not in line.split("at its end")[0]


def test_a_busy_start_says_so() -> None:
    assert start_load_note(2.5, 2) == "above the core count: other work shared the machine"
    assert start_load_note(1.5, 2) == "other work was running as the run began"
    assert start_load_note(1.0, 2) == "the machine was quiet as the run began"
