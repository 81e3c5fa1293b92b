"""The task service's internal API as the scheduler and billing call it (workers have their own,
retrying client in services.worker.client). One deadline per client; failures arrive as domain
errors (`services.kit.clients.call`)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from services.kit.clients import ServiceClient
from services.task.pricing import PriceRule
from studiox.task.v1 import task_pb2, task_pb2_grpc


@dataclass(frozen=True)
class Claimed:
    """A claim's outcome: tasks handed out, and expired leases requeued or failed on the way."""

    task_ids: list[str]
    requeued: int
    failed: int


@dataclass(frozen=True)
class Repaired:
    rejected: int
    refunded: int
    settled: int = 0


def rule_to_proto(rule: PriceRule) -> task_pb2.PriceRule:
    return task_pb2.PriceRule(
        base=rule.base,
        rate_per_unit=str(rule.rate),
        unit=rule.unit,
        input_field=rule.input_field,
        maximum=rule.maximum,
        flat_price=rule.flat_price,
    )


def rule_from_proto(message: task_pb2.PriceRule) -> PriceRule:
    return PriceRule(
        base=message.base,
        maximum=message.maximum,
        flat_price=message.flat_price,
        rate=Decimal(message.rate_per_unit or "0"),
        unit=message.unit,
        input_field=message.input_field,
    )


class TaskClient(ServiceClient[task_pb2_grpc.TaskInternalServiceStub]):
    service = "task"
    stub_type = task_pb2_grpc.TaskInternalServiceStub

    async def claim_pending(self, *, limit: int, lease_seconds: int, worker_id: str) -> Claimed:
        request = task_pb2.ClaimPendingRequest(
            limit=limit, lease_seconds=lease_seconds, worker_id=worker_id
        )
        reply = await self._call(self._stub.ClaimPending, request)
        return Claimed([t.id for t in reply.tasks], reply.requeued, reply.failed)

    async def repair_orphans(self, *, min_age_seconds: int | None = None) -> Repaired:
        request = task_pb2.RepairOrphansRequest()
        if min_age_seconds is not None:
            request.min_age_seconds = min_age_seconds
        reply = await self._call(self._stub.RepairOrphans, request)
        return Repaired(reply.rejected, reply.refunded, reply.settled)

    async def price_rules(self) -> list[tuple[str, int, PriceRule]]:
        """(task type, credits a request naming no usage costs, the type's price rule)."""
        reply = await self._call(self._stub.ListTaskTypes, task_pb2.ListTaskTypesRequest())
        return [(t.type, t.cost, rule_from_proto(t.rule)) for t in reply.types]
