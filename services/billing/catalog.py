"""The price catalog: what each task type costs and which plans include it. The costs are the task
service's (the ones creation charges, read over its internal API, never copied here); the plans and
their features are billing's (the ones the ledger checks at every charge, placed by SetPlan)."""

from __future__ import annotations

import grpc

from services.billing import store
from services.billing.domain import TaskPrice, task_prices
from services.kit.clients import ServiceChannels, domain_error
from services.kit.db import Database
from studiox.task.v1 import task_pb2, task_pb2_grpc

TASK_TIMEOUT_SECONDS = 5.0


class PriceCatalog:
    def __init__(self, db: Database, channels: ServiceChannels) -> None:
        self._db = db
        self._channels = channels

    async def prices(self) -> list[TaskPrice]:
        stub = task_pb2_grpc.TaskInternalServiceStub(self._channels.channel("task"))
        try:
            reply = await stub.ListTaskTypes(
                task_pb2.ListTaskTypesRequest(), timeout=TASK_TIMEOUT_SECONDS
            )
        except grpc.aio.AioRpcError as err:
            raise domain_error(err) from err
        async with self._db.autocommit() as conn:
            plans = await store.list_plans(conn)
        return task_prices([(t.type, t.cost) for t in reply.types], plans)
