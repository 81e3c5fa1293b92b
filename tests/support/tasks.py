"""Helpers for tests that drive the real task service."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import struct_pb2

from studiox.task.v1 import task_pb2, task_pb2_grpc
from tests.support.tokens import DEFAULT_KEY, bearer


def struct(data: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(data)
    return message


class TaskClient:
    def __init__(self, channel: grpc.aio.Channel, user: str) -> None:
        self.user = user
        self.stub = task_pb2_grpc.TaskServiceStub(channel)
        self.internal = task_pb2_grpc.TaskInternalServiceStub(channel)
        self.md = bearer(DEFAULT_KEY.mint(user))

    async def create(
        self, task_type: str = "image_analysis", key: str | None = None, **input_data: object
    ) -> task_pb2.CreateTaskResponse:
        md = self.md + ((("idempotency-key", key),) if key else ())
        return await self.stub.CreateTask(
            task_pb2.CreateTaskRequest(type=task_type, input_data=struct(input_data)), metadata=md
        )

    async def cancel(self, task_id: str) -> task_pb2.CancelTaskResponse:
        return await self.stub.CancelTask(task_pb2.CancelTaskRequest(id=task_id), metadata=self.md)

    async def get(self, task_id: str) -> task_pb2.Task:
        return (await self.stub.GetTask(task_pb2.GetTaskRequest(id=task_id), metadata=self.md)).task
