"""DEMO processors for the local stack (`studiox worker --demo`, started by `make run`).

They do no AI work: they describe their input, wait a little and return placeholder results marked
`"demo": true`, so a frontend can see tasks go pending -> processing -> done offline. The worker
refuses `--demo` when APP_ENV=production.

Input knobs, for trying the UI's other paths: `demoSeconds` (0-120) overrides the processing time,
`demoFail` (a message) makes the task fail, which refunds its credits.

They report plausible usage, so pricing by usage can be seen locally: a demo video comes out a
little shorter than asked for (80% of `durationSeconds`, 2.5 s when none is asked for), so its
reservation is settled for less; images report megapixels and edits seconds (their rules are flat).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from services.kit.features import TaskType
from services.worker.client import ClaimedTask
from services.worker.processors import Measured, Output, Processor, TaskFailed

LABEL = "StudioX demo processor: placeholder output, no AI involved"
PLACEHOLDER_BASE = "https://example.com/studiox-demo"
MAX_DEMO_SECONDS = 120.0


def _seconds(task: ClaimedTask, default: float) -> float:
    raw = task.input_data.get("demoSeconds", default)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return default
    return min(max(value, 0.0), MAX_DEMO_SECONDS)


async def _pretend(task: ClaimedTask, default_seconds: float) -> None:
    failure = task.input_data.get("demoFail")
    await asyncio.sleep(_seconds(task, default_seconds))
    if failure:
        raise TaskFailed(str(failure)[:200])


def _describe(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "fields": sorted(data),
        "bytes": len(json.dumps(data, separators=(",", ":")).encode()),
        "text": [v for v in data.values() if isinstance(v, str)][:5],
    }


# Seconds of video a demo clip has when the request asks for no duration.
DEMO_CLIP_SECONDS = 2.5


def _clip_seconds(task: ClaimedTask) -> float:
    asked = task.input_data.get("durationSeconds")
    if isinstance(asked, int | float) and not isinstance(asked, bool) and 0 < asked <= 3600:
        return round(float(asked) * 0.8, 1)
    return DEMO_CLIP_SECONDS


async def image_analysis(task: ClaimedTask) -> Measured:
    await _pretend(task, 0.5)
    described = _describe(task.input_data)
    return Measured(_analysis(described), {"megapixels": 2.1})


def _analysis(described: dict[str, Any]) -> Output:
    return {
        "demo": True,
        "note": LABEL,
        "description": f"A demo analysis of an input with {len(described['fields'])} field(s).",
        "input": described,
        "labels": ["demo", "placeholder"],
    }


async def video_generation(task: ClaimedTask) -> Measured:
    await _pretend(task, 3.0)
    seconds = _clip_seconds(task)
    output = {
        "demo": True,
        "note": LABEL,
        "videoUrl": f"{PLACEHOLDER_BASE}/video/{task.id}.mp4",
        "durationSeconds": seconds,
        "input": _describe(task.input_data),
    }
    return Measured(output, {"seconds": seconds})


async def advanced_editing(task: ClaimedTask) -> Measured:
    await _pretend(task, 2.0)
    output = {
        "demo": True,
        "note": LABEL,
        "editedUrl": f"{PLACEHOLDER_BASE}/edit/{task.id}.mp4",
        "input": _describe(task.input_data),
    }
    return Measured(output, {"seconds": 2.0})


PROCESSORS: dict[str, Processor] = {
    TaskType.IMAGE_ANALYSIS.value: image_analysis,
    TaskType.VIDEO_GENERATION.value: video_generation,
    TaskType.ADVANCED_EDITING.value: advanced_editing,
}
