"""The price catalog: what each task type costs and which plans include it. The costs are the task
service's (the ones creation charges, read over its internal API, never copied here); the plans and
their features are billing's (the ones the ledger checks at every charge, placed by SetPlan)."""

from __future__ import annotations

from services.billing import store
from services.billing.domain import TaskPrice, task_prices
from services.kit.clients import ServiceChannels
from services.kit.db import Database
from services.task.client import TaskClient

TASK_TIMEOUT_SECONDS = 5.0


class PriceCatalog:
    def __init__(self, db: Database, channels: ServiceChannels) -> None:
        self._db = db
        self._tasks = TaskClient(channels, timeout=TASK_TIMEOUT_SECONDS)

    async def prices(self) -> list[TaskPrice]:
        priced = await self._tasks.price_rules()
        async with self._db.autocommit() as conn:
            plans = await store.list_plans(conn)
        return task_prices(
            [(t, cost) for t, cost, _ in priced], plans, {t: rule for t, _, rule in priced}
        )
