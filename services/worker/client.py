"""The worker's view of the task service: a small typed client over the internal RPCs (claim,
heartbeat, release) and `UpdateStatus` (complete, fail), with gRPC failures sorted into what a
worker must do about them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
from google.protobuf import json_format, struct_pb2

from services.kit.clients import ServiceChannels
from studiox.task.v1 import task_pb2, task_pb2_grpc

# The task is no longer ours: requeued after a lost lease, cancelled by its user, or finished.
LOST_CODES = frozenset({grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND})
# Retrying cannot help: wrong credential or address, or a request the service will never accept.
REFUSED_CODES = frozenset(
    {
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INVALID_ARGUMENT,
    }
)
# A released task's lease ends this many seconds later; the next claim (by any worker, or the
# scheduler's lease upkeep) puts it back to pending.
RELEASE_LEASE_SECONDS = 1


class QueueUnavailable(Exception):
    """The task service could not be reached or answered a transient error; retry later."""


class QueueRefused(Exception):
    """The task service refused the call for good (misconfiguration or an unacceptable request)."""


class LeaseLost(Exception):
    """The task is no longer this worker's; stop working on it and report nothing."""


@dataclass(frozen=True)
class ClaimedTask:
    id: str
    type: str
    user_id: str
    input_data: dict[str, Any]
    credits_cost: int


class TaskQueue(Protocol):
    """What the runtime needs from the task service (the gRPC client below, or a fake in tests)."""

    async def claim(self, limit: int, lease_seconds: int, worker_id: str) -> list[ClaimedTask]: ...

    async def heartbeat(self, task_id: str, worker_id: str, lease_seconds: int) -> None: ...

    async def release(self, task_id: str, worker_id: str) -> None: ...

    async def complete(
        self, task_id: str, output: Mapping[str, Any], usage: Mapping[str, float] | None = None
    ) -> None: ...

    async def fail(self, task_id: str, error: str) -> None: ...

    async def close(self) -> None: ...


def _task(message: task_pb2.Task) -> ClaimedTask:
    return ClaimedTask(
        id=message.id,
        type=message.type,
        user_id=message.user_id,
        input_data=json_format.MessageToDict(message.input_data),
        credits_cost=message.credits_cost,
    )


def to_struct(output: Mapping[str, Any]) -> struct_pb2.Struct:
    """A processor's output as the JSON object the task stores; refuses what JSON cannot hold."""
    message = struct_pb2.Struct()
    # A round trip through json rejects sets, bytes, NaN… with a clear error before any RPC.
    message.update(json.loads(json.dumps(dict(output), allow_nan=False)))
    return message


def _sorted(err: grpc.aio.AioRpcError) -> Exception:
    """Transient and unexpected failures are retried; only lost tasks and refusals are final."""
    text = f"{err.code().name}: {err.details()}"
    if err.code() in LOST_CODES:
        return LeaseLost(text)
    if err.code() in REFUSED_CODES:
        return QueueRefused(text)
    return QueueUnavailable(text)


class GrpcTaskQueue:
    """The task service over gRPC, authenticated with the internal credential (kit's channels)."""

    def __init__(self, channels: ServiceChannels, timeout: float) -> None:
        self._channels = channels
        channel = channels.channel("task")
        self._internal = task_pb2_grpc.TaskInternalServiceStub(channel)
        self._tasks = task_pb2_grpc.TaskServiceStub(channel)
        self._timeout = timeout

    async def claim(self, limit: int, lease_seconds: int, worker_id: str) -> list[ClaimedTask]:
        try:
            reply = await self._internal.ClaimPending(
                task_pb2.ClaimPendingRequest(
                    limit=limit, lease_seconds=lease_seconds, worker_id=worker_id
                ),
                timeout=self._timeout,
            )
        except grpc.aio.AioRpcError as err:
            raise _sorted(err) from err
        return [_task(t) for t in reply.tasks]

    async def heartbeat(self, task_id: str, worker_id: str, lease_seconds: int) -> None:
        try:
            await self._internal.Heartbeat(
                task_pb2.HeartbeatRequest(
                    id=task_id, worker_id=worker_id, lease_seconds=lease_seconds
                ),
                timeout=self._timeout,
            )
        except grpc.aio.AioRpcError as err:
            raise _sorted(err) from err

    async def release(self, task_id: str, worker_id: str) -> None:
        # The contract has no "give back" call: shortening our own lease to its minimum makes the
        # next claim requeue the task (as one used attempt), exactly as after a crash, only sooner.
        await self.heartbeat(task_id, worker_id, RELEASE_LEASE_SECONDS)

    async def complete(
        self, task_id: str, output: Mapping[str, Any], usage: Mapping[str, float] | None = None
    ) -> None:
        await self._update(
            task_pb2.UpdateStatusRequest(
                id=task_id, status="done", output_data=to_struct(output), usage=dict(usage or {})
            )
        )

    async def fail(self, task_id: str, error: str) -> None:
        await self._update(task_pb2.UpdateStatusRequest(id=task_id, status="failed", error=error))

    async def _update(self, request: task_pb2.UpdateStatusRequest) -> None:
        try:
            await self._tasks.UpdateStatus(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as err:
            raise _sorted(err) from err

    async def close(self) -> None:
        await self._channels.close()
