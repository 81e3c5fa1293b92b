"""Task servicers: proto <-> domain translation only."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import struct_pb2

from services.kit.access import Access
from services.kit.context import current_identity
from services.kit.db import Database
from services.kit.pagination import decode_cursor, page_and_cursor, page_limit
from services.kit.proto_time import set_timestamp, to_timestamp
from services.kit.transport import IDEMPOTENCY_HEADER, request_header, set_http_status
from services.kit.validation import json_value
from services.task import store
from services.task.client import rule_to_proto
from services.task.documents import set_documents
from services.task.domain import Status, Task, parse_status
from services.task.lifecycle import TaskLifecycle
from services.task.pricing import PRICES
from studiox.task.v1 import task_pb2, task_pb2_grpc

ACCESS = {
    # Workers report progress through the gateway with the internal credential; users get 403.
    "TaskService/UpdateStatus": Access.INTERNAL,
}


def task_to_proto(task: Task) -> task_pb2.Task:
    message = task_pb2.Task()
    fill_task(message, task)
    return message


def fill_task(message: task_pb2.Task, task: Task) -> None:
    """Set a Task message's fields in place. A list page fills the messages its reply already
    holds (`tasks.add()`): building each Task, its Structs and Timestamps apart and copying them
    in cost a third more of a page's CPU (docs/PERFORMANCE.md)."""
    if task.encoded_documents is not None:
        # First: every field set below is the row's own, whatever stored bytes might hold.
        message.MergeFromString(task.encoded_documents)
    else:
        set_documents(message, task.input_data, task.output_data, task.usage)
    message.id = str(task.id)
    message.user_id = task.user_id
    message.type = task.type
    message.status = task.status.value
    message.error = task.error or ""
    message.credits_cost = task.credits_cost
    set_timestamp(message.created_at, task.created_at)
    set_timestamp(message.updated_at, task.updated_at)
    if task.completed_at is not None:
        set_timestamp(message.completed_at, task.completed_at)
    message.credits_reserved = task.credits_reserved or task.credits_cost
    message.credits_uncharged = task.credits_uncharged


def _dict(message: struct_pb2.Struct) -> dict[str, Any]:
    # Already checked at the boundary (depth, NUL, finite numbers, size): see kit/validation.
    data: dict[str, Any] = json_value(message)
    return data


class TaskApi(task_pb2_grpc.TaskServiceServicer):
    def __init__(self, db: Database, lifecycle: TaskLifecycle) -> None:
        self._db = db
        self._tasks = lifecycle

    async def CreateTask(
        self, request: task_pb2.CreateTaskRequest, context: grpc.aio.ServicerContext
    ) -> task_pb2.CreateTaskResponse:
        created = await self._tasks.create(
            current_identity(),
            request.type,
            _dict(request.input_data),
            request_header(context, IDEMPOTENCY_HEADER),
        )
        await set_http_status(context, 201)
        return task_pb2.CreateTaskResponse(
            success=True,
            message="Task created successfully",
            task=task_to_proto(created.task),
            credit_deducted=created.credit_deducted,
            remaining_credits=created.remaining_credits,
        )

    async def ListTasks(
        self, request: task_pb2.ListTasksRequest, context: grpc.aio.ServicerContext
    ) -> task_pb2.ListTasksResponse:
        status = parse_status(request.status) if request.status else None
        limit = page_limit(request.limit)
        before = decode_cursor(request.cursor)
        tasks = await self._tasks.page(current_identity(), status, limit + 1, before)
        page, cursor = page_and_cursor(tasks, limit, lambda t: t.seq)
        reply = task_pb2.ListTasksResponse(success=True, count=len(page), next_cursor=cursor)
        for task in page:
            fill_task(reply.tasks.add(), task)
        return reply

    async def GetTaskStats(
        self, request: task_pb2.GetTaskStatsRequest, context: grpc.aio.ServicerContext
    ) -> task_pb2.GetTaskStatsResponse:
        async with self._db.autocommit() as conn:
            rows = await store.stats_for_user(conn, current_identity().user_id)
        by_status = {s: 0 for s in Status}
        by_type: dict[str, int] = {}
        for status, task_type, count in rows:
            by_status[Status(status)] += count
            by_type[task_type] = by_type.get(task_type, 0) + count
        return task_pb2.GetTaskStatsResponse(
            success=True,
            stats=task_pb2.TaskStats(
                total=sum(by_status.values()),
                pending=by_status[Status.PENDING],
                processing=by_status[Status.PROCESSING],
                done=by_status[Status.DONE],
                failed=by_status[Status.FAILED],
                cancelled=by_status[Status.CANCELLED],
                by_type=by_type,
            ),
        )

    async def QuoteTask(
        self, request: task_pb2.QuoteTaskRequest, context: grpc.aio.ServicerContext
    ) -> task_pb2.QuoteTaskResponse:
        quoted = await self._tasks.quote(current_identity(), request.type)
        return task_pb2.QuoteTaskResponse(
            success=True,
            type=quoted.type,
            cost=quoted.cost,
            allowed=quoted.allowed,
            reason=quoted.reason,
            message=quoted.message,
            available_credits=quoted.available_credits,
            plan_name=quoted.plan_name,
            is_unlimited=quoted.is_unlimited,
            rule=rule_to_proto(quoted.rule) if quoted.rule else None,
        )

    async def GetTask(
        self, request: task_pb2.GetTaskRequest, context: grpc.aio.ServicerContext
    ) -> task_pb2.GetTaskResponse:
        task = await self._tasks.get(current_identity(), request.id)
        return task_pb2.GetTaskResponse(success=True, task=task_to_proto(task))

    async def CancelTask(
        self, request: task_pb2.CancelTaskRequest, context: grpc.aio.ServicerContext
    ) -> task_pb2.CancelTaskResponse:
        task, refunded = await self._tasks.cancel(current_identity(), request.id)
        return task_pb2.CancelTaskResponse(
            success=True,
            message="Task cancelled" + (" and credits refunded" if refunded else ""),
            task=task_to_proto(task),
            refund_applied=refunded,
        )

    async def UpdateStatus(
        self, request: task_pb2.UpdateStatusRequest, context: grpc.aio.ServicerContext
    ) -> task_pb2.UpdateStatusResponse:
        output = _dict(request.output_data) if request.HasField("output_data") else None
        task = await self._tasks.update_status(
            request.id, request.status, output, request.error, dict(request.usage)
        )
        return task_pb2.UpdateStatusResponse(success=True, task=task_to_proto(task))


class TaskInternalApi(task_pb2_grpc.TaskInternalServiceServicer):
    def __init__(self, lifecycle: TaskLifecycle) -> None:
        self._tasks = lifecycle

    async def ClaimPending(
        self, request: task_pb2.ClaimPendingRequest, context: grpc.aio.ServicerContext
    ) -> task_pb2.ClaimPendingResponse:
        tasks, requeued, failed = await self._tasks.claim(
            request.limit, request.lease_seconds, request.worker_id
        )
        return task_pb2.ClaimPendingResponse(
            tasks=[task_to_proto(t) for t in tasks], requeued=requeued, failed=failed
        )

    async def Heartbeat(
        self, request: task_pb2.HeartbeatRequest, context: grpc.aio.ServicerContext
    ) -> task_pb2.HeartbeatResponse:
        expires = await self._tasks.heartbeat(request.id, request.worker_id, request.lease_seconds)
        return task_pb2.HeartbeatResponse(lease_expires_at=to_timestamp(expires))

    async def RepairOrphans(
        self, request: task_pb2.RepairOrphansRequest, context: grpc.aio.ServicerContext
    ) -> task_pb2.RepairOrphansResponse:
        min_age = request.min_age_seconds if request.HasField("min_age_seconds") else None
        repaired = await self._tasks.repair(min_age)
        return task_pb2.RepairOrphansResponse(
            charged=0,
            rejected=repaired.rejected,
            refunded=repaired.refunded,
            settled=repaired.settled,
        )

    async def ListTaskTypes(
        self, request: task_pb2.ListTaskTypesRequest, context: grpc.aio.ServicerContext
    ) -> task_pb2.ListTaskTypesResponse:
        # The costs creation charges: billing's price catalog is read from here, not copied.
        return task_pb2.ListTaskTypesResponse(
            types=[
                task_pb2.TaskType(type=t, cost=rule.flat_price, rule=rule_to_proto(rule))
                for t, rule in PRICES.items()
            ]
        )
