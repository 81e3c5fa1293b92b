"""The machine's speed for Python alone through a bench run (bench/speed.py), and its line in the
report's Machine section."""

from __future__ import annotations

import time

from bench.report import machine_notes
from bench.speed import SAMPLE_SECONDS, SpeedSampler, reference_ms, reference_work, speed_note


def test_the_reference_is_the_same_work_every_time() -> None:
    assert (
        reference_work()
        == reference_work()
        == sum(len(f"user_{i % 97}") + i % 13 for i in range(100_000))
    )


def test_a_sample_is_cpu_time_so_a_wait_for_a_core_is_not_in_it() -> None:
    started = time.perf_counter()
    ms = reference_ms()
    wall_ms = (time.perf_counter() - started) * 1000
    assert 0 < ms <= wall_ms + 1  # thread CPU time never exceeds the wall time around it


def test_the_sampler_samples_until_stopped() -> None:
    sampler = SpeedSampler(every=0.01).start()
    deadline = time.monotonic() + 10
    while len(sampler.samples) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    samples = sampler.stop()
    assert len(samples) >= 3
    assert all(ms > 0 for ms in samples)
    time.sleep(0.05)
    assert sampler.samples == samples  # nothing after stop


def test_the_note_gives_median_and_range() -> None:
    line = speed_note([40.0, 70.0, 38.0, 66.0, 69.0])
    assert line is not None
    assert line.startswith("- Python alone during the run: 66 ms of CPU")
    assert (
        f"(median of 5 samples, one every {SAMPLE_SECONDS:.0f} s; fastest 38, slowest 70 ms)"
        in line
    )
    assert speed_note([]) is None


def test_the_machine_section_has_the_line_only_with_samples() -> None:
    assert any("Python alone" in x for x in machine_notes((0.2, 0.2, 0.2), None, [50.0]))
    assert not any("Python alone" in x for x in machine_notes((0.2, 0.2, 0.2)))
