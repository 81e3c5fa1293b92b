"""The scheduler's jobs and runner (services.scheduler.jobs) against in-memory fakes of the credit
and task services and of the job-run table: resets and expiries run in batches until nothing is
due, each job asks with the configured limits, and every run is recorded, failed ones included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.kit.errors import InvalidInput
from services.kit.proto_time import from_timestamp
from services.scheduler.config import SchedulerConfig
from services.scheduler.jobs import JobRunner, Jobs
from studiox.task.v1 import task_pb2
from tests.support.fakes.channels import FakeChannels
from tests.support.fakes.credit import FakeCredit
from tests.support.fakes.db import FakeDatabase
from tests.support.fakes.job_store import FakeJobRunStore
from tests.support.fakes.journal import Journal
from tests.support.fakes.task_service import FakeTaskService


class World:
    def __init__(self, **config: object) -> None:
        self.journal = Journal()
        self.credit = FakeCredit(self.journal)
        self.tasks = FakeTaskService(self.journal)
        self.runs = FakeJobRunStore(self.journal)
        settings: dict[str, object] = {
            "reset_batch_size": 3,
            "reset_workers": 2,
            "claim_limit": 7,
            "lease_seconds": 120,
            "repair_min_age_seconds": 90,
            "instance": "sched-1",
            **config,
        }
        self.config = SchedulerConfig(_env_file=None, **settings)  # type: ignore[arg-type]
        self.jobs = Jobs(FakeChannels(credit=self.credit, task=self.tasks), self.config)
        self.runner = JobRunner(FakeDatabase(self.runs), self.jobs, "sched-1", self.runs)

    def accounts_due(self, count: int) -> None:
        past = datetime.now(UTC) - timedelta(hours=1)
        for n in range(count):
            self.credit.open_account(f"user_{n}", allowance=2, reset_at=past)


@pytest.fixture
def world() -> World:
    return World()


async def test_credit_reset_resets_every_due_account_once_in_batches(world: World) -> None:
    world.accounts_due(10)

    counts = await world.jobs.credit_reset()

    assert counts["accounts"] == 10
    assert all(world.credit.balance(f"user_{n}") == 10 for n in range(10))
    assert all(a.reset_at > datetime.now(UTC) for a in world.credit.accounts.values())
    requests = world.credit.requests("ResetDue")
    assert {r.batch_size for r in requests} == {3}
    # One moment for the whole run: accounts falling due meanwhile wait for the next one.
    assert len({from_timestamp(r.as_of) for r in requests}) == 1
    assert counts["batches"] == len(requests)


async def test_credit_reset_with_nothing_due_asks_once_per_worker(world: World) -> None:
    counts = await world.jobs.credit_reset()

    assert counts == {"accounts": 0, "batches": 2}


async def test_credit_expiry_runs_until_no_grant_is_past_its_expiry(world: World) -> None:
    world.credit.expired_grants = ["user_a", "user_a", "user_b", "user_c", "user_c", "user_d", "x"]

    counts = await world.jobs.credit_expiry()

    assert counts["grants"] == 7
    assert world.credit.expired_grants == []
    assert counts["batches"] == len(world.credit.requests("ExpireDue"))


async def test_process_tasks_claims_with_the_configured_limits(world: World) -> None:
    world.tasks.claim_reply = task_pb2.ClaimPendingResponse(
        tasks=[task_pb2.Task(id="t1"), task_pb2.Task(id="t2")], requeued=1, failed=3
    )

    counts = await world.jobs.process_tasks()

    (claim,) = world.tasks.requests("ClaimPending")
    assert (claim.limit, claim.lease_seconds, claim.worker_id) == (7, 120, "scheduler:sched-1")
    assert counts == {"claimed": 2, "requeued": 1, "failed": 3}


async def test_repair_asks_with_the_configured_minimum_age(world: World) -> None:
    world.tasks.repair_reply = task_pb2.RepairOrphansResponse(rejected=2, refunded=1, settled=3)

    counts = await world.jobs.repair()

    (repair,) = world.tasks.requests("RepairOrphans")
    assert repair.min_age_seconds == 90
    assert counts == {"rejected": 2, "refunded": 1, "settled": 3}


async def test_the_runner_records_a_run_before_and_after_it(world: World) -> None:
    world.accounts_due(4)

    run = await world.runner.run("credit-reset", trigger="manual")

    assert (run.outcome, run.counts["accounts"]) == ("ok", 4)
    assert world.journal.in_order(
        "job_runs.start:credit-reset", "credit.ResetDue", "job_runs.finish:ok"
    )
    (row,) = world.runs.runs
    assert (row.job, row.instance, row.trigger, row.outcome) == (
        "credit-reset",
        "sched-1",
        "manual",
        "ok",
    )
    assert row.counts == run.counts


async def test_a_failed_run_is_recorded_and_never_raised(world: World) -> None:
    world.tasks.fail("RepairOrphans")

    run = await world.runner.run("repair")

    assert (run.outcome, run.counts) == ("error", {})
    assert run.error is not None
    assert run.error.startswith("UNAVAILABLE")
    (row,) = world.runs.runs
    assert (row.outcome, row.error) == ("error", run.error)


async def test_an_unknown_job_is_refused_before_anything_is_recorded(world: World) -> None:
    with pytest.raises(InvalidInput):
        await world.runner.run("make-coffee")

    assert world.runs.runs == []
