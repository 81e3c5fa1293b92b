"""Pricing by usage in the task service layer (services.task.lifecycle, services.task.settlement)
against in-memory fakes: creation reserves the most a request can cost, as a hold; a done task is
charged what its worker measured, never above the reservation, and the rest is given back; a
settlement the ledger did not confirm is owed (`settling`) and paid by repair exactly once."""

from __future__ import annotations

import uuid

import grpc
import pytest

from services.kit.context import Identity
from services.kit.errors import InvalidInput
from services.task.domain import ChargeState, Status
from services.task.lifecycle import TaskLifecycle
from tests.support.fakes.channels import FakeChannels
from tests.support.fakes.clock import FakeClock
from tests.support.fakes.credit import FakeCredit
from tests.support.fakes.db import FakeDatabase
from tests.support.fakes.journal import Journal
from tests.support.fakes.task_store import FakeTaskStore

ADA = Identity("user_ada")


class World:
    def __init__(self, allowance: int = 40) -> None:
        self.journal = Journal()
        self.tasks = FakeTaskStore(self.journal, FakeClock())
        self.credit = FakeCredit(self.journal)
        self.credit.open_account(ADA.user_id, allowance=allowance)
        self.lifecycle = TaskLifecycle(
            FakeDatabase(self.tasks), FakeChannels(credit=self.credit), self.tasks
        )

    def balance(self) -> int:
        return self.credit.balance(ADA.user_id)

    async def processing(self, input_data: dict[str, object]) -> uuid.UUID:
        created = await self.lifecycle.create(ADA, "video_generation", input_data, None)
        await self.lifecycle.update_status(str(created.task.id), "processing", None, "")
        return created.task.id

    async def done(self, task_id: uuid.UUID, seconds: float) -> None:
        await self.lifecycle.update_status(
            str(task_id), "done", {"ok": True}, "", {"seconds": seconds}
        )


@pytest.fixture
def world() -> World:
    return World()


async def test_creation_reserves_the_estimate_of_the_duration_asked_for(world: World) -> None:
    created = await world.lifecycle.create(ADA, "video_generation", {"durationSeconds": 10}, None)

    (charge,) = world.credit.requests("Charge")
    assert (charge.amount, charge.hold) == (11, True)  # 1 + 1 per second
    assert (created.credit_deducted, created.task.credits_reserved) == (11, 11)
    assert world.balance() == 40 - 11


async def test_a_request_naming_no_usage_reserves_the_flat_price(world: World) -> None:
    created = await world.lifecycle.create(ADA, "video_generation", {"prompt": "x"}, None)
    assert created.credit_deducted == 5
    flat = await world.lifecycle.create(ADA, "advanced_editing", {"seconds": 1e6}, None)
    assert flat.credit_deducted == 3


@pytest.mark.parametrize(
    ("seconds", "charged", "uncharged"),
    [(6.2, 8, 0), (10, 11, 0), (25, 11, 15)],
    ids=["below", "equal", "above"],
)
async def test_done_charges_the_measured_cost_never_above_the_reservation(
    world: World, seconds: float, charged: int, uncharged: int
) -> None:
    task_id = await world.processing({"durationSeconds": 10})  # reserves 11

    await world.done(task_id, seconds)

    task = world.tasks.task(task_id)
    assert (task.status, task.charge_state) == (Status.DONE, ChargeState.SETTLED)
    assert (task.credits_cost, task.credits_uncharged, task.usage) == (
        charged,
        uncharged,
        {"seconds": seconds},
    )
    assert world.balance() == 40 - charged
    assert world.credit.ledger_sum(ADA.user_id) == -charged  # the hold, less what came back
    assert world.journal.in_order("tasks.complete:settling", "credit.Settle")


async def test_nothing_measured_charges_the_reservation(world: World) -> None:
    task_id = await world.processing({"durationSeconds": 10})
    await world.lifecycle.update_status(str(task_id), "done", {"ok": True}, "")
    assert world.tasks.task(task_id).credits_cost == 11
    assert world.balance() == 40 - 11


async def test_a_lost_settlement_is_owed_and_repair_settles_it_once(world: World) -> None:
    task_id = await world.processing({"durationSeconds": 10})
    world.credit.fail("Settle", code=grpc.StatusCode.DEADLINE_EXCEEDED, after_applying=True)

    await world.done(task_id, 4)  # the ledger settled; the answer was lost
    assert world.tasks.task(task_id).charge_state is ChargeState.SETTLING
    assert world.balance() == 40 - 5

    for _ in range(3):
        await world.lifecycle.repair(0)

    assert world.tasks.task(task_id).charge_state is ChargeState.SETTLED
    assert world.balance() == 40 - 5
    assert world.credit.ledger_sum(ADA.user_id) == -5
    assert len(world.credit.requests("Settle")) == 2  # one lost answer, one repair


async def test_an_unreachable_ledger_leaves_the_settlement_to_repair(world: World) -> None:
    task_id = await world.processing({"durationSeconds": 10})
    world.credit.fail("Settle")

    await world.done(task_id, 4)
    assert world.tasks.task(task_id).charge_state is ChargeState.SETTLING
    assert world.balance() == 40 - 11  # still the reservation

    repaired = await world.lifecycle.repair(0)
    assert repaired.settled == 1
    assert world.balance() == 40 - 5


async def test_failures_release_the_whole_reservation(world: World) -> None:
    task_id = await world.processing({"durationSeconds": 10})
    await world.lifecycle.update_status(str(task_id), "failed", None, "boom")
    assert world.tasks.task(task_id).charge_state is ChargeState.REFUNDED
    assert world.balance() == 40


@pytest.mark.parametrize(
    "usage",
    [
        {"seconds": float("nan")},
        {"seconds": -1.0},
        {"Bad Unit": 1.0},
        {f"u{i}": 1 for i in range(9)},
    ],
)
async def test_hostile_usage_is_refused_and_changes_nothing(
    world: World, usage: dict[str, float]
) -> None:
    task_id = await world.processing({"durationSeconds": 10})
    with pytest.raises(InvalidInput):
        await world.lifecycle.update_status(str(task_id), "done", {"ok": True}, "", usage)
    assert world.tasks.task(task_id).status is Status.PROCESSING
    assert world.balance() == 40 - 11


@pytest.mark.parametrize("duration", [-1, "ten", True, 1e12])
async def test_a_bad_duration_is_refused_before_anything_is_reserved(
    world: World, duration: object
) -> None:
    with pytest.raises(InvalidInput, match="durationSeconds"):
        await world.lifecycle.create(ADA, "video_generation", {"durationSeconds": duration}, None)
    assert world.credit.requests("Charge") == []
    assert world.tasks.rows == {}
