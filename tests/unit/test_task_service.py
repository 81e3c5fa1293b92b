"""The task service layer (services.task.lifecycle) against in-memory fakes of its store and the
credit service: exactly-once charging rests on the order reserve -> charge -> mark, refunds are
recorded as owed before the ledger is asked, and repair settles whatever an interruption left."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace

import grpc
import pytest

from services.kit.context import Identity
from services.kit.errors import (
    DomainError,
    ErrorKind,
    InvalidInput,
    InvalidState,
    NotFound,
    Unavailable,
)
from services.task.domain import ChargeState, Status
from services.task.lifecycle import DEFAULT_REPAIR_MIN_AGE_SECONDS, MAX_ATTEMPTS, TaskLifecycle
from tests.support.fakes.channels import FakeChannels
from tests.support.fakes.clock import FakeClock
from tests.support.fakes.credit import FakeCredit
from tests.support.fakes.db import FakeDatabase
from tests.support.fakes.journal import Journal
from tests.support.fakes.task_store import FakeTaskStore

ADA = Identity("user_ada")
BOB = Identity("user_bob")
PROMPT = {"prompt": "a sunset"}


class World:
    def __init__(self) -> None:
        self.journal = Journal()
        self.clock = FakeClock()
        self.tasks = FakeTaskStore(self.journal, self.clock)
        self.credit = FakeCredit(self.journal)
        self.credit.open_account(ADA.user_id, allowance=10)
        self.db = FakeDatabase(self.tasks)
        self.lifecycle = TaskLifecycle(self.db, FakeChannels(credit=self.credit), self.tasks)

    def balance(self) -> int:
        return self.credit.balance(ADA.user_id)

    async def created(self, task_type: str = "video_generation") -> uuid.UUID:
        return (await self.lifecycle.create(ADA, task_type, PROMPT, None)).task.id

    def after_repair_age(self) -> None:
        self.clock.advance(DEFAULT_REPAIR_MIN_AGE_SECONDS + 1)


@pytest.fixture
def world() -> World:
    return World()


# --- creation: reserve, charge, mark ---


async def test_create_reserves_then_charges_then_marks(world: World) -> None:
    created = await world.lifecycle.create(ADA, "video_generation", PROMPT, None)

    assert world.journal.in_order("tasks.insert_reserved", "credit.Charge", "tasks.mark_charged")
    assert created.task.charge_state is ChargeState.CHARGED
    assert created.task.status is Status.PENDING
    assert (created.credit_deducted, created.remaining_credits) == (5, 5)
    (charge,) = world.credit.requests("Charge")
    assert charge.idempotency_key == f"task:{created.task.id}"
    assert charge.reference == str(created.task.id)
    assert (charge.amount, charge.feature) == (5, "video_generation")


async def test_the_reservation_is_committed_before_the_ledger_is_charged(world: World) -> None:
    seen: list[tuple[int, ChargeState]] = []
    world.credit.on_call = lambda method: seen.append(
        (world.db.open_transactions, world.tasks.only().charge_state)
    )

    await world.created()

    # No transaction held across the call, and the row it charges for exists as a reservation.
    assert seen == [(0, ChargeState.RESERVED)]


async def test_a_refused_charge_leaves_no_task(world: World) -> None:
    world.credit.accounts[ADA.user_id].allowance = 3

    with pytest.raises(DomainError) as refused:
        await world.created()

    assert refused.value.kind is ErrorKind.INSUFFICIENT_CREDITS
    assert refused.value.message == "Insufficient credits. Required: 5, Available: 3"
    assert world.tasks.rows == {}
    assert world.balance() == 3


async def test_a_feature_outside_the_plan_leaves_no_task(world: World) -> None:
    world.credit.accounts[ADA.user_id].features = ("image_analysis",)

    with pytest.raises(DomainError) as refused:
        await world.created("advanced_editing")

    assert refused.value.kind is ErrorKind.FEATURE_NOT_IN_PLAN
    assert world.tasks.rows == {}


async def test_an_unconfirmed_charge_keeps_the_reservation_for_repair(world: World) -> None:
    world.credit.fail("Charge")

    with pytest.raises(Unavailable):
        await world.created()

    assert world.tasks.only().charge_state is ChargeState.RESERVED
    assert world.balance() == 10


async def test_repair_gives_up_an_unfinished_reservation_with_nothing_charged(
    world: World,
) -> None:
    world.credit.fail("Charge")
    with pytest.raises(Unavailable):
        await world.created()
    world.after_repair_age()

    repaired = await world.lifecycle.repair(None)

    task = world.tasks.only()
    assert (repaired.rejected, repaired.refunded) == (1, 0)
    assert (task.status, task.charge_state) == (Status.FAILED, ChargeState.RELEASED)
    assert world.balance() == 10


async def test_repair_pays_back_a_charge_whose_answer_was_lost(world: World) -> None:
    world.credit.fail("Charge", code=grpc.StatusCode.DEADLINE_EXCEEDED, after_applying=True)
    with pytest.raises(Unavailable):
        await world.created()
    assert world.balance() == 5  # the ledger took it; the task does not know
    world.after_repair_age()

    repaired = await world.lifecycle.repair(None)

    task = world.tasks.only()
    assert (repaired.rejected, repaired.refunded) == (1, 1)
    assert (task.status, task.charge_state) == (Status.FAILED, ChargeState.REFUNDED)
    assert world.balance() == 10
    assert world.credit.ledger_sum(ADA.user_id) == 0


async def test_repair_leaves_young_reservations_to_their_create_call(world: World) -> None:
    world.credit.fail("Charge")
    with pytest.raises(Unavailable):
        await world.created()

    repaired = await world.lifecycle.repair(None)

    assert (repaired.rejected, repaired.refunded) == (0, 0)
    assert world.tasks.only().charge_state is ChargeState.RESERVED


async def test_a_charge_landing_after_repair_gave_up_is_paid_back(world: World) -> None:
    def repair_meanwhile(method: str) -> None:
        row = next(iter(world.tasks.rows.values()))
        row.task = replace(row.task, status=Status.FAILED, charge_state=ChargeState.REFUNDING)

    world.credit.on_call = repair_meanwhile

    with pytest.raises(Unavailable):
        await world.created()

    world.credit.on_call = None
    assert world.tasks.only().charge_state is ChargeState.REFUNDED
    assert world.balance() == 10


async def test_concurrent_creates_share_the_statement_that_marks_them_charged(
    world: World,
) -> None:
    world.credit.open_account(BOB.user_id, allowance=100)

    created = await asyncio.gather(
        *(world.lifecycle.create(BOB, "video_generation", {"n": n}, None) for n in range(12))
    )

    assert all(c.task.charge_state is ChargeState.CHARGED for c in created)
    assert len({c.task.id for c in created}) == 12
    assert all(
        world.tasks.rows[c.task.id].task.charge_state is ChargeState.CHARGED for c in created
    )
    assert len(world.credit.requests("Charge")) == 12
    assert world.journal.count("tasks.mark_charged") < 12
    assert world.credit.balance(BOB.user_id) == 100 - 12 * 5


async def test_a_replayed_idempotency_key_returns_the_task_and_charges_once(world: World) -> None:
    first = await world.lifecycle.create(ADA, "video_generation", PROMPT, "key-1")
    again = await world.lifecycle.create(ADA, "video_generation", PROMPT, "key-1")

    assert again.task.id == first.task.id
    assert again.remaining_credits == 5
    assert len(world.credit.requests("Charge")) == 1
    assert world.balance() == 5


async def test_an_idempotency_key_reused_for_another_request_is_refused(world: World) -> None:
    await world.lifecycle.create(ADA, "video_generation", PROMPT, "key-1")

    with pytest.raises(InvalidInput):
        await world.lifecycle.create(ADA, "video_generation", {"prompt": "other"}, "key-1")

    assert len(world.tasks.rows) == 1
    assert world.balance() == 5


async def test_invalid_requests_touch_neither_store_nor_ledger(world: World) -> None:
    with pytest.raises(InvalidInput):
        await world.lifecycle.create(ADA, "mind_reading", PROMPT, None)
    with pytest.raises(InvalidInput):
        await world.lifecycle.create(ADA, "video_generation", PROMPT, " ")

    assert world.journal.events == []


# --- cancellation and failure: the refund is owed before it is asked for ---


async def test_cancel_records_the_refund_as_owed_before_asking_the_ledger(world: World) -> None:
    task_id = await world.created()

    task, applied = await world.lifecycle.cancel(ADA, str(task_id))

    assert applied
    assert (task.status, task.charge_state) == (Status.CANCELLED, ChargeState.REFUNDED)
    assert world.journal.in_order(
        "tasks.set_status:cancelled:refunding", "credit.Refund", "tasks.move_charge:refunded"
    )
    (refund,) = world.credit.requests("Refund")
    assert refund.charge_idempotency_key == f"task:{task_id}"
    assert refund.idempotency_key == f"refund:task:{task_id}"
    assert world.balance() == 10


async def test_cancelling_twice_refunds_once(world: World) -> None:
    task_id = await world.created()
    await world.lifecycle.cancel(ADA, str(task_id))

    task, applied = await world.lifecycle.cancel(ADA, str(task_id))

    assert not applied
    assert task.status is Status.CANCELLED
    assert world.balance() == 10
    assert len(world.credit.keys(ADA.user_id, "refund")) == 1


async def test_a_refund_the_ledger_cannot_take_stays_owed_until_repair(world: World) -> None:
    task_id = await world.created()
    world.credit.fail("Refund")

    with pytest.raises(Unavailable):
        await world.lifecycle.cancel(ADA, str(task_id))

    owed = world.tasks.task(task_id)
    assert (owed.status, owed.charge_state) == (Status.CANCELLED, ChargeState.REFUNDING)
    assert world.balance() == 5

    repaired = await world.lifecycle.repair(None)

    assert repaired.refunded == 1
    assert world.tasks.task(task_id).charge_state is ChargeState.REFUNDED
    assert world.balance() == 10


async def test_finished_tasks_cannot_be_cancelled(world: World) -> None:
    task_id = await world.created()
    await world.lifecycle.update_status(str(task_id), "processing", None, "")
    await world.lifecycle.update_status(str(task_id), "done", {"videoUrl": "v.mp4"}, "")

    with pytest.raises(InvalidState):
        await world.lifecycle.cancel(ADA, str(task_id))

    assert world.balance() == 5


async def test_someone_elses_task_is_not_found(world: World) -> None:
    task_id = await world.created()

    with pytest.raises(NotFound):
        await world.lifecycle.cancel(BOB, str(task_id))
    with pytest.raises(NotFound):
        await world.lifecycle.get(BOB, str(task_id))
    with pytest.raises(NotFound):
        await world.lifecycle.get(ADA, "not-a-uuid")

    assert world.tasks.task(task_id).status is Status.PENDING


# --- workers ---


async def test_a_failed_task_is_refunded_and_a_done_one_keeps_its_charge(world: World) -> None:
    failing, done = await world.created(), await world.created("image_analysis")
    for task_id in (failing, done):
        await world.lifecycle.update_status(str(task_id), "processing", None, "")

    failed = await world.lifecycle.update_status(str(failing), "failed", None, "  boom  ")
    finished = await world.lifecycle.update_status(str(done), "done", {"ok": True}, "")

    assert (failed.status, failed.charge_state, failed.error) == (
        Status.FAILED,
        ChargeState.REFUNDED,
        "boom",
    )
    assert (finished.charge_state, finished.output_data) == (ChargeState.SETTLED, {"ok": True})
    assert world.balance() == 10 - 1


async def test_only_a_charged_task_may_be_processed(world: World) -> None:
    world.credit.fail("Charge")
    with pytest.raises(Unavailable):
        await world.created()
    reserved = world.tasks.only()

    with pytest.raises(InvalidState):
        await world.lifecycle.update_status(str(reserved.id), "processing", None, "")


async def test_workers_follow_the_state_machine(world: World) -> None:
    task_id = await world.created()

    with pytest.raises(InvalidState):
        await world.lifecycle.update_status(str(task_id), "done", {}, "")
    with pytest.raises(InvalidInput):
        await world.lifecycle.update_status(str(task_id), "exploded", None, "")


async def test_claiming_fails_and_refunds_a_task_out_of_attempts(world: World) -> None:
    task_id = await world.created()
    for _ in range(MAX_ATTEMPTS):
        claimed, _, _ = await world.lifecycle.claim(10, 60, "w1")
        assert [t.id for t in claimed] == [task_id]
        world.tasks.expire_lease(task_id)

    claimed, requeued, failed = await world.lifecycle.claim(10, 60, "w1")

    task = world.tasks.task(task_id)
    assert (claimed, requeued, failed) == ([], 0, 1)
    assert (task.status, task.charge_state) == (Status.FAILED, ChargeState.REFUNDED)
    assert world.balance() == 10


async def test_an_expired_lease_is_requeued_while_attempts_remain(world: World) -> None:
    task_id = await world.created()
    await world.lifecycle.claim(10, 60, "w1")
    world.tasks.expire_lease(task_id)

    claimed, requeued, failed = await world.lifecycle.claim(0, 60, "w1")

    assert (claimed, requeued, failed) == ([], 1, 0)
    assert world.tasks.task(task_id).status is Status.PENDING
    with pytest.raises(InvalidState):
        await world.lifecycle.heartbeat(str(task_id), "w1", 60)


async def test_claim_limits_are_checked(world: World) -> None:
    with pytest.raises(InvalidInput):
        await world.lifecycle.claim(101, 60, "w1")
    with pytest.raises(InvalidInput):
        await world.lifecycle.claim(1, 3601, "w1")
