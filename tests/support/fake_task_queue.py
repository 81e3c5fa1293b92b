"""An in-memory task service with the worker contract of docs/WORKERS.md (claim with leases,
heartbeat by owner, done/failed only while processing), for unit tests of the worker runtime."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from services.worker.client import (
    RELEASE_LEASE_SECONDS,
    ClaimedTask,
    LeaseLost,
    QueueUnavailable,
)

MAX_ATTEMPTS = 3


@dataclass
class FakeTask:
    id: str
    type: str
    input_data: dict[str, Any]
    status: str = "pending"
    owner: str | None = None
    lease_until: float = 0.0
    attempts: int = 0
    output: dict[str, Any] | None = None
    error: str | None = None
    usage: dict[str, float] = field(default_factory=dict)
    heartbeats: int = 0


@dataclass
class FakeTaskQueue:
    tasks: dict[str, FakeTask] = field(default_factory=dict)
    # Calls (by name) that fail with QueueUnavailable before succeeding, e.g. {"complete": 2}.
    outages: dict[str, int] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    closed: bool = False

    def add(self, task_type: str = "image_analysis", **input_data: Any) -> FakeTask:
        task = FakeTask(f"t{len(self.tasks) + 1}", task_type, dict(input_data))
        self.tasks[task.id] = task
        return task

    def cancel(self, task_id: str) -> None:
        """What a user's cancel does: the task ends, its lease with it."""
        task = self.tasks[task_id]
        task.status, task.owner = "cancelled", None

    def statuses(self) -> dict[str, str]:
        return {t.id: t.status for t in self.tasks.values()}

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if self.outages.get(name, 0) > 0:
            self.outages[name] -= 1
            raise QueueUnavailable(f"{name}: UNAVAILABLE")

    def _owned(self, task_id: str, worker_id: str | None = None) -> FakeTask:
        task = self.tasks.get(task_id)
        if task is None or task.status != "processing":
            raise LeaseLost("FAILED_PRECONDITION: Task is not being processed")
        if worker_id is not None and task.owner != worker_id:
            raise LeaseLost("FAILED_PRECONDITION: Task is not being processed by this worker")
        return task

    async def claim(self, limit: int, lease_seconds: int, worker_id: str) -> list[ClaimedTask]:
        self._call("claim")
        now = time.monotonic()
        for task in self.tasks.values():
            if task.status == "processing" and task.lease_until < now:
                if task.attempts >= MAX_ATTEMPTS:
                    task.status, task.error = "failed", "Processing did not finish"
                else:
                    task.status, task.owner = "pending", None
        claimed: list[ClaimedTask] = []
        for task in self.tasks.values():
            if len(claimed) >= limit:
                break
            if task.status == "pending":
                task.status, task.owner = "processing", worker_id
                task.lease_until, task.attempts = now + lease_seconds, task.attempts + 1
                claimed.append(ClaimedTask(task.id, task.type, "user_1", dict(task.input_data), 1))
        return claimed

    async def heartbeat(self, task_id: str, worker_id: str, lease_seconds: int) -> None:
        self._call("heartbeat")
        task = self._owned(task_id, worker_id)
        task.lease_until = time.monotonic() + lease_seconds
        task.heartbeats += 1

    async def release(self, task_id: str, worker_id: str) -> None:
        self._call("release")
        task = self._owned(task_id, worker_id)
        task.lease_until = time.monotonic() + RELEASE_LEASE_SECONDS

    async def complete(
        self, task_id: str, output: Mapping[str, Any], usage: Mapping[str, float] | None = None
    ) -> None:
        self._call("complete")
        task = self._owned(task_id)
        task.status, task.output, task.owner = "done", dict(output), None
        task.usage = dict(usage or {})

    async def fail(self, task_id: str, error: str) -> None:
        self._call("fail")
        task = self._owned(task_id)
        task.status, task.error, task.owner = "failed", error, None

    async def close(self) -> None:
        self.closed = True
