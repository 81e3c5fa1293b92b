"""DEMO processors for the local stack (`studiox worker --demo`, started by `make run`).

They do no AI work: they describe their input, wait a little and return placeholder results marked
`"demo": true`, so a frontend can see tasks go pending -> processing -> done offline. The worker
refuses `--demo` when APP_ENV=production.

Input knobs, for trying the UI's other paths: `demoSeconds` (0-120) overrides the processing time,
`demoFail` (a message) makes the task fail, which refunds its credits.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from services.worker.client import ClaimedTask
from services.worker.processors import Output, Processor, TaskFailed

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


async def image_analysis(task: ClaimedTask) -> Output:
    await _pretend(task, 0.5)
    described = _describe(task.input_data)
    return {
        "demo": True,
        "note": LABEL,
        "description": f"A demo analysis of an input with {len(described['fields'])} field(s).",
        "input": described,
        "labels": ["demo", "placeholder"],
    }


async def video_generation(task: ClaimedTask) -> Output:
    await _pretend(task, 3.0)
    return {
        "demo": True,
        "note": LABEL,
        "videoUrl": f"{PLACEHOLDER_BASE}/video/{task.id}.mp4",
        "durationSeconds": 5,
        "input": _describe(task.input_data),
    }


async def advanced_editing(task: ClaimedTask) -> Output:
    await _pretend(task, 2.0)
    return {
        "demo": True,
        "note": LABEL,
        "editedUrl": f"{PLACEHOLDER_BASE}/edit/{task.id}.mp4",
        "input": _describe(task.input_data),
    }


PROCESSORS: dict[str, Processor] = {
    "image_analysis": image_analysis,
    "video_generation": video_generation,
    "advanced_editing": advanced_editing,
}
