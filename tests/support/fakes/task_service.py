"""The task service's internal API as the scheduler calls it: each reply is what the test set."""

from __future__ import annotations

from typing import Any

from studiox.task.v1 import task_pb2
from tests.support.fakes.channels import FakeService
from tests.support.fakes.journal import Journal


class FakeTaskService(FakeService):
    name = "task"

    def __init__(self, journal: Journal | None = None) -> None:
        super().__init__(journal)
        self.claim_reply = task_pb2.ClaimPendingResponse()
        self.repair_reply = task_pb2.RepairOrphansResponse()

    async def ClaimPending(self, request: task_pb2.ClaimPendingRequest) -> Any:
        return self.claim_reply

    async def RepairOrphans(self, request: task_pb2.RepairOrphansRequest) -> Any:
        return self.repair_reply
