"""Settling reservations (services.credit.reservations) against the in-memory credit store: a hold
keeps the measured cost, never more than it held, gives the rest back to the grants it came from
(last-spent first), settles once whatever the redeliveries, and a released hold cannot be settled."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.credit.domain import Category, PlanTerms
from services.credit.grants import Grants
from services.credit.ledger import Ledger
from services.credit.plans import Plans
from services.credit.reservations import Reservations
from services.credit.steps import Stores
from services.kit.errors import InvalidInput, InvalidState, NotFound
from tests.support.fakes.credit_store import FakeCreditStore
from tests.support.fakes.db import FakeDatabase

USER = "user_ada"
FREE = PlanTerms("free", 10, False, ("image_analysis", "video_generation"))


class World:
    def __init__(self) -> None:
        self.store = FakeCreditStore()
        self.db = FakeDatabase(self.store)
        # The fake holds every table, so it stands for all four stores.
        stores = Stores(self.store, self.store, self.store, self.store)
        self.ledger = Ledger(self.db, stores)
        self.grants = Grants(self.db, stores)
        self.plans = Plans(self.db, stores)
        self.reservations = Reservations(self.db, stores)

    async def open(self) -> None:
        await self.plans.set_plan(
            user_id=USER,
            terms=FREE,
            key="signup",
            start_new_period=True,
            period_end=None,
            now=datetime.now(UTC),
        )
        await self.grants.grant(user_id=USER, amount=3, category=Category.PROMOTIONAL, key="promo")

    async def hold(self, amount: int, key: str = "task:a") -> None:
        await self.ledger.charge(
            user_id=USER,
            amount=amount,
            key=key,
            reference=key,
            description="",
            feature="video_generation",
            hold=True,
        )

    async def settle(self, cost: int, key: str = "task:a") -> tuple[int, int, int, bool]:
        done = await self.reservations.settle(
            user_id=USER, reservation_key=key, cost=cost, key=f"settle:{key}", description=""
        )
        return done.charged, done.returned, done.uncharged, done.applied

    def remaining(self) -> dict[Category, int]:
        return {g.category: g.remaining for g in self.store.grants_of(USER) if g.is_open}

    def balance(self) -> int:
        return self.store.s.accounts[USER].current_credits


@pytest.fixture
async def world() -> World:
    w = World()
    await w.open()
    return w


@pytest.mark.parametrize(
    ("cost", "expected", "left"),
    [
        (2, (2, 9, 0, True), {Category.PROMOTIONAL: 1, Category.ALLOWANCE: 10}),
        (11, (11, 0, 0, True), {Category.PROMOTIONAL: 0, Category.ALLOWANCE: 2}),
        (40, (11, 0, 29, True), {Category.PROMOTIONAL: 0, Category.ALLOWANCE: 2}),
    ],
    ids=["below", "equal", "above"],
)
async def test_a_hold_keeps_the_cost_and_gives_the_rest_back_last_spent_first(
    world: World, cost: int, expected: tuple[int, int, int, bool], left: dict[Category, int]
) -> None:
    await world.hold(11)  # 3 promotional, then 8 of the allowance
    assert await world.reservations.held(USER) == 11

    assert await world.settle(cost) == expected
    assert world.remaining() == left
    assert world.balance() == 13 - expected[0]
    assert await world.reservations.held(USER) == 0


async def test_settle_redelivered_20_times_settles_once(world: World) -> None:
    await world.hold(11)
    answers = [await world.settle(5) for _ in range(20)]
    assert answers[0] == (5, 6, 0, True)
    assert set(answers[1:]) == {(5, 6, 0, False)}
    assert world.balance() == 13 - 5
    with pytest.raises(InvalidInput):
        await world.settle(6)  # the same settlement asked for another cost


async def test_a_released_or_unknown_hold_cannot_be_settled(world: World) -> None:
    await world.hold(4)
    await world.ledger.refund(
        user_id=USER, charge_key="task:a", amount=0, key="refund:task:a", description=""
    )
    assert await world.reservations.held(USER) == 0
    with pytest.raises(InvalidState):
        await world.settle(2)
    with pytest.raises(NotFound):
        await world.settle(2, key="task:none")
    await world.ledger.charge(
        user_id=USER, amount=1, key="plain", reference="", description="", feature="image_analysis"
    )
    with pytest.raises(NotFound):  # a charge that is not a hold
        await world.settle(1, key="plain")
    assert world.balance() == 13 - 1
