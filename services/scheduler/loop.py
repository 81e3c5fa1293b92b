"""The scheduler's main loop: win (or keep) leadership, then let `schedule` fire the jobs.

Only the leader schedules anything. On becoming leader it first catches up the daily credit reset
if its latest slot passed without a successful run; the same check guards every daily run, so the
reset happens once per period however often leadership moves. A job never overlaps itself.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import schedule
from prometheus_client import Gauge

from services.kit.db import Database
from services.scheduler import store
from services.scheduler.config import SchedulerConfig
from services.scheduler.domain import (
    AUTO_TOP_UP,
    CREDIT_EXPIRY,
    CREDIT_RESET,
    GRANT_WARNINGS,
    PROCESS_TASKS,
    REPAIR,
    daily_run_due,
    parse_daily_time,
)
from services.scheduler.jobs import LAST_SUCCESS, JobRunner
from services.scheduler.leader import LeaderLock

log = logging.getLogger("studiox.scheduler")
LEADER_TICK_SECONDS = 0.5
LEADER = Gauge("studiox_scheduler_leader", "1 while this replica leads the scheduler, else 0")


class SchedulerLoop:
    def __init__(
        self, db: Database, runner: JobRunner, lock: LeaderLock, config: SchedulerConfig
    ) -> None:
        self._db = db
        self._runner = runner
        self._lock = lock
        self._config = config
        self._reset_at = parse_daily_time(config.reset_at)
        self._schedule: schedule.Scheduler | None = None
        self._running: dict[str, asyncio.Task[None]] = {}

    @property
    def is_leader(self) -> bool:
        return self._schedule is not None

    async def run(self) -> None:
        LEADER.set(0)
        try:
            while True:
                if self.is_leader:
                    if await self._lock.still_held():
                        assert self._schedule is not None
                        self._schedule.run_pending()
                    else:
                        self._step_down()
                elif await self._lock.try_acquire():
                    await self._take_over()
                await asyncio.sleep(
                    LEADER_TICK_SECONDS if self.is_leader else self._config.leader_poll_seconds
                )
        finally:
            self._step_down()
            await asyncio.gather(*self._running.values(), return_exceptions=True)
            await self._lock.release()

    async def _take_over(self) -> None:
        log.info("became scheduler leader", extra={"instance": self._config.instance})
        plan = schedule.Scheduler()
        plan.every().day.at(self._reset_at.strftime("%H:%M"), "UTC").do(self._launch, CREDIT_RESET)
        plan.every(self._config.expire_every_seconds).seconds.do(self._launch, CREDIT_EXPIRY)
        plan.every(self._config.process_every_seconds).seconds.do(self._launch, PROCESS_TASKS)
        plan.every(self._config.repair_every_seconds).seconds.do(self._launch, REPAIR)
        plan.every(self._config.top_up_every_seconds).seconds.do(self._launch, AUTO_TOP_UP)
        plan.every(self._config.warn_expiring_every_seconds).seconds.do(
            self._launch, GRANT_WARNINGS
        )
        self._schedule = plan
        LEADER.set(1)
        self._launch(CREDIT_RESET, trigger="catch-up")

    def _step_down(self) -> None:
        if self._schedule is not None:
            log.warning("no longer scheduler leader", extra={"instance": self._config.instance})
        self._schedule = None
        LEADER.set(0)
        for task in self._running.values():
            task.cancel()

    def _launch(self, name: str, trigger: str = "schedule") -> None:
        running = self._running.get(name)
        if running is not None and not running.done():
            log.info("job still running; skipped", extra={"job": name})
            return
        self._running[name] = asyncio.get_running_loop().create_task(self._run(name, trigger))

    async def _run(self, name: str, trigger: str) -> None:
        if name == CREDIT_RESET:
            async with self._db.autocommit() as conn:
                last = await store.last_success_start(conn, CREDIT_RESET)
            if last is not None:
                LAST_SUCCESS.labels(CREDIT_RESET).set(last.timestamp())
            if not daily_run_due(last, datetime.now(UTC), self._reset_at):
                return
        await self._runner.run(name, trigger)
