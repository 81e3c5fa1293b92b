"""Where processors come from (explicit paths, demo set, entry points) and what the demo ones do."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest

from services.task.pricing import PRICES
from services.worker import demo
from services.worker.client import ClaimedTask
from services.worker.processors import (
    ConfigurationError,
    Processor,
    TaskFailed,
    parse_pairs,
    resolve,
)

TYPES = ("image_analysis", "video_generation", "advanced_editing")


async def installed(task: ClaimedTask) -> Mapping[str, Any]:
    return {"from": "entry point"}


def task(task_type: str = "image_analysis", **input_data: Any) -> ClaimedTask:
    return ClaimedTask("t1", task_type, "user_1", dict(input_data), 1)


def test_pairs_are_parsed_from_options_and_comma_lists() -> None:
    assert parse_pairs(["a=m:f,b=m.n:g", "", "c = x:y"]) == {"a": "m:f", "b": "m.n:g", "c": "x:y"}
    with pytest.raises(ConfigurationError, match="TYPE=module:attribute"):
        parse_pairs(["image_analysis=nocolon"])


def test_explicit_paths_win_over_defaults_and_entry_points() -> None:
    registry = resolve(
        TYPES,
        {"image_analysis": "services.worker.demo:advanced_editing"},
        demo.PROCESSORS,
        discover=lambda: dict.fromkeys(TYPES, installed),
    )
    assert registry["image_analysis"] is demo.advanced_editing
    assert registry["video_generation"] is demo.video_generation


def test_entry_points_fill_the_types_nothing_else_names() -> None:
    found: dict[str, Processor] = dict.fromkeys(TYPES, installed)
    registry = resolve(
        TYPES, {"video_generation": "services.worker.demo:video_generation"}, discover=lambda: found
    )
    assert registry["image_analysis"] is installed
    assert registry["video_generation"] is demo.video_generation


def test_every_type_needs_a_processor() -> None:
    with pytest.raises(ConfigurationError, match="no processor for video_generation"):
        resolve(
            TYPES, discover=lambda: {"image_analysis": installed, "advanced_editing": installed}
        )


@pytest.mark.parametrize(
    ("explicit", "message"),
    [
        ({"speech": "services.worker.demo:image_analysis"}, "unknown task type"),
        ({"image_analysis": "services.worker.nowhere:f"}, "cannot load"),
        ({"image_analysis": "services.worker.demo:missing"}, "cannot load"),
        ({"image_analysis": "services.worker.demo:LABEL"}, "not callable"),
    ],
)
def test_bad_configuration_is_refused_at_start(explicit: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        resolve(TYPES, explicit, demo.PROCESSORS, discover=dict)


async def test_demo_processors_are_labelled_and_describe_their_input() -> None:
    out = (await demo.image_analysis(task(url="https://x/cat.png", demoSeconds=0))).output
    assert out["demo"] is True
    assert "demo" in out["note"].lower()
    assert out["input"]["fields"] == ["demoSeconds", "url"]
    assert out["input"]["text"] == ["https://x/cat.png"]
    video = (await demo.video_generation(task("video_generation", demoSeconds=0))).output
    assert video["videoUrl"].endswith("/t1.mp4")


async def test_demo_processors_measure_plausible_usage() -> None:
    # A demo clip comes out shorter than asked for, so the tour (which names a duration) shows a
    # reservation settled for less than it held (services.task.pricing: 1 + 1 per second).
    asked = await demo.video_generation(task("video_generation", durationSeconds=10, demoSeconds=0))
    default = await demo.video_generation(task("video_generation", demoSeconds=0))
    assert asked.usage == {"seconds": 8.0}
    assert asked.output["durationSeconds"] == 8.0
    assert default.usage == {"seconds": demo.DEMO_CLIP_SECONDS}
    rule, named = PRICES["video_generation"], {"durationSeconds": 10}
    assert rule.measured_cost(named, asked.usage, rule.reservation(named)) == 9  # of 11 reserved


async def test_demo_input_can_ask_for_a_failure_or_a_duration() -> None:
    with pytest.raises(TaskFailed, match="as asked"):
        await demo.advanced_editing(task("advanced_editing", demoFail="as asked", demoSeconds=0))
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await demo.image_analysis(task(demoSeconds=5))
