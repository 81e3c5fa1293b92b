"""The scheduler's jobs, and the runner that records every run. The CLI (`studiox jobs run`) and
the schedule use the same runner."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from prometheus_client import Counter, Gauge, Histogram

from services.credit.client import CreditClient, drain
from services.kit.clients import ServiceChannels
from services.kit.db import Database
from services.kit.errors import DomainError
from services.kit.sql import Connection
from services.scheduler import store
from services.scheduler.config import SchedulerConfig
from services.scheduler.domain import (
    AUTO_TOP_UP,
    CREDIT_EXPIRY,
    CREDIT_RESET,
    GRANT_WARNINGS,
    PROCESS_TASKS,
    REPAIR,
    check_job,
)
from services.scheduler.topup_jobs import TopUpJobs
from services.task.client import TaskClient

log = logging.getLogger("studiox.scheduler")

JOB_SECONDS = Histogram(
    "studiox_job_duration_seconds",
    "Scheduler job run time",
    ["job", "outcome"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900),
)
JOB_RUNS = Counter("studiox_job_runs_total", "Scheduler job runs", ["job", "outcome"])
# What a missed daily reset is alerted on (deploy/prometheus/rules.yml); the leader also sets it
# from scheduler.job_runs when it takes over, so a restart does not hide an old success.
LAST_SUCCESS = Gauge(
    "studiox_job_last_success_timestamp_seconds",
    "Start time (Unix seconds) of the job's latest successful run",
    ["job"],
)
CALL_TIMEOUT_SECONDS = 120.0
MAX_RESET_BATCHES = 10_000  # a bound on one run: 10k batches of 10k accounts

Counts = dict[str, int]


class Jobs:
    def __init__(self, channels: ServiceChannels, config: SchedulerConfig) -> None:
        self._config = config
        # Batches of a reset can take long: the jobs' calls share one generous deadline.
        self._credit = CreditClient(channels, timeout=CALL_TIMEOUT_SECONDS)
        self._tasks = TaskClient(channels, timeout=CALL_TIMEOUT_SECONDS)
        self._top_ups = TopUpJobs(channels, warn_within_hours=config.warn_expiring_hours)

    def named(self, name: str) -> Callable[[], Awaitable[Counts]]:
        jobs: dict[str, Callable[[], Awaitable[Counts]]] = {
            CREDIT_RESET: self.credit_reset,
            CREDIT_EXPIRY: self.credit_expiry,
            PROCESS_TASKS: self.process_tasks,
            REPAIR: self.repair,
            AUTO_TOP_UP: self._top_ups.auto_top_up,
            GRANT_WARNINGS: self._top_ups.grant_warnings,
        }
        return jobs[check_job(name)]

    async def credit_reset(self) -> Counts:
        """ResetDue in batches until no account is due, with several batches in flight."""
        as_of = datetime.now(UTC)
        size = self._config.reset_batch_size
        run = await drain(
            lambda: self._credit.reset_due(batch_size=size, as_of=as_of),
            loops=self._config.reset_workers,
            max_batches=MAX_RESET_BATCHES,
        )
        return {"accounts": run.accounts, "batches": run.batches}

    async def credit_expiry(self) -> Counts:
        """ExpireDue in batches until no open grant is past its expiry, the reset's way."""
        as_of = datetime.now(UTC)
        size = self._config.reset_batch_size
        run = await drain(
            lambda: self._credit.expire_due(batch_size=size, as_of=as_of),
            loops=self._config.reset_workers,
            max_batches=MAX_RESET_BATCHES,
        )
        return {"grants": run.grants, "accounts": run.accounts, "batches": run.batches}

    async def process_tasks(self) -> Counts:
        claimed = await self._tasks.claim_pending(
            limit=self._config.claim_limit,
            lease_seconds=self._config.lease_seconds,
            worker_id=f"scheduler:{self._config.instance}",
        )
        return {
            "claimed": len(claimed.task_ids),
            "requeued": claimed.requeued,
            "failed": claimed.failed,
        }

    async def repair(self) -> Counts:
        repaired = await self._tasks.repair_orphans(
            min_age_seconds=self._config.repair_min_age_seconds
        )
        return {
            "rejected": repaired.rejected,
            "refunded": repaired.refunded,
            "settled": repaired.settled,
        }


@dataclass(frozen=True)
class JobRun:
    job: str
    outcome: str
    counts: Counts
    error: str | None = None


class JobRunStore(Protocol):
    """The statements the runner runs: services.scheduler.store, or a fake in unit tests."""

    async def record_start(
        self, conn: Connection, job: str, instance: str, trigger: str
    ) -> int: ...

    async def record_finish(
        self,
        conn: Connection,
        run_id: int,
        outcome: str,
        counts: dict[str, int],
        error: str | None,
    ) -> None: ...


class JobRunner:
    def __init__(self, db: Database, jobs: Jobs, instance: str, runs: JobRunStore = store) -> None:
        self._db = db
        self._store = runs
        self._jobs = jobs
        self._instance = instance

    async def run(self, name: str, trigger: str = "schedule") -> JobRun:
        job = self._jobs.named(name)
        started_at = datetime.now(UTC)
        async with self._db.transaction() as conn:
            run_id = await self._store.record_start(conn, name, self._instance, trigger)
        started = time.perf_counter()
        try:
            result = JobRun(name, "ok", await job())
        except DomainError as err:  # what the called service refused, or Unavailable
            result = JobRun(name, "error", {}, f"{err.kind.value}: {err}")
        except Exception as err:  # a failed run is recorded, never fatal to the scheduler
            log.exception("job %s failed", name)
            result = JobRun(name, "error", {}, type(err).__name__)
        elapsed = time.perf_counter() - started
        async with self._db.transaction() as conn:
            await self._store.record_finish(
                conn, run_id, result.outcome, result.counts, result.error
            )
        JOB_SECONDS.labels(name, result.outcome).observe(elapsed)
        JOB_RUNS.labels(name, result.outcome).inc()
        if result.outcome == "ok":
            LAST_SUCCESS.labels(name).set(started_at.timestamp())
        log.info(
            "job finished",
            extra={
                "job": name,
                "trigger": trigger,
                "outcome": result.outcome,
                "counts": result.counts,
                "ms": round(elapsed * 1000, 1),
            },
        )
        return result
