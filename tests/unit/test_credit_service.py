"""The credit service layers (services.credit.ledger, grants, plans) against an in-memory fake of
their stores: the order a charge spends grants in, repeats and refusals, refunds back to the grants
a charge came from (and what is owed settled first), grants with priority and expiry, clawbacks,
and plan periods.
The SQL statements themselves are the integration tests' business (tests/integration/test_credit_*).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from services.credit.domain import Account, Category, CloseReason, EntryKind, Grant, PlanTerms
from services.credit.grants import Grants
from services.credit.ledger import Ledger
from services.credit.plans import Plans
from services.credit.steps import Stores
from services.kit.errors import (
    FeatureNotInPlan,
    InsufficientCredits,
    InvalidInput,
    InvalidState,
    NotFound,
)
from services.kit.features import FEATURES
from tests.support.fakes.credit_store import FakeCreditStore
from tests.support.fakes.db import FakeDatabase

USER = "user_ada"
FREE = PlanTerms("free", 10, False, ("image_analysis", "video_generation"))
PRO = PlanTerms("pro", 100, False, FEATURES)
UNLIMITED = PlanTerms("enterprise", 0, True, FEATURES)


class World:
    def __init__(self) -> None:
        self.store = FakeCreditStore()
        self.db = FakeDatabase(self.store)
        # The fake holds every table, so it stands for all four stores.
        stores = Stores(self.store, self.store, self.store, self.store)
        self.ledger = Ledger(self.db, stores)
        self.grants = Grants(self.db, stores)
        self.plans = Plans(self.db, stores)

    async def open(self, terms: PlanTerms = FREE) -> None:
        await self.plan(terms, "signup", new_period=True)

    async def plan(self, terms: PlanTerms, key: str, *, new_period: bool) -> tuple[Account, bool]:
        return await self.plans.set_plan(
            user_id=USER,
            terms=terms,
            key=key,
            start_new_period=new_period,
            period_end=None,
            now=datetime.now(UTC),
        )

    async def give(
        self,
        amount: int,
        category: Category,
        key: str,
        *,
        expires_at: datetime | None = None,
        priority: int | None = None,
    ) -> Grant:
        await self.grants.grant(
            user_id=USER,
            amount=amount,
            category=category,
            key=key,
            expires_at=expires_at,
            priority=priority,
        )
        return self.grant(key)

    async def charge(self, amount: int, key: str, feature: str = "image_analysis") -> int:
        posting = await self.ledger.charge(
            user_id=USER,
            amount=amount,
            key=key,
            reference=key,
            description="",
            feature=feature,
        )
        return posting.remaining_credits

    def taken(self, key: str) -> dict[int, int]:
        entry = next(e for e in self.store.entries_of(USER) if e.idempotency_key == key)
        return {g.grant_id: g.delta for g in entry.grants}

    def grant(self, key: str) -> Grant:
        return next(g for g in self.store.grants_of(USER) if g.source_key == key)

    def balance(self) -> int:
        return self.store.s.accounts[USER].current_credits


@pytest.fixture
async def world() -> World:
    w = World()
    await w.open()
    return w


# --- charges ---


async def test_a_charge_spends_promotional_then_allowance_then_compensation_then_purchased(
    world: World,
) -> None:
    bought = await world.give(5, Category.PURCHASED, "buy")
    comp = await world.give(5, Category.COMPENSATION, "comp")
    promo = await world.give(5, Category.PROMOTIONAL, "promo")
    allowance = world.grant("signup:grant")

    assert await world.charge(22, "c1") == 3
    assert world.taken("c1") == {promo.id: -5, allowance.id: -10, comp.id: -5, bought.id: -2}


async def test_within_a_priority_the_soonest_expiry_goes_first_and_never_expiring_last(
    world: World,
) -> None:
    now = datetime.now(UTC)
    never = await world.give(3, Category.PROMOTIONAL, "never")
    later = await world.give(3, Category.PROMOTIONAL, "later", expires_at=now + timedelta(days=9))
    sooner = await world.give(3, Category.PROMOTIONAL, "soon", expires_at=now + timedelta(days=1))

    await world.charge(7, "c1")
    assert world.taken("c1") == {sooner.id: -3, later.id: -3, never.id: -1}


async def test_a_lapsed_grant_is_never_spent_even_before_its_expiry_entry(world: World) -> None:
    lapsed = await world.give(50, Category.PROMOTIONAL, "old")
    world.store.s.grants[lapsed.id] = replace(
        lapsed, expires_at=datetime.now(UTC) - timedelta(minutes=1)
    )

    with pytest.raises(InsufficientCredits) as refused:
        await world.charge(11, "c1")
    assert refused.value.message == "Insufficient credits. Required: 11, Available: 10"
    assert await world.charge(10, "c2") == 50  # the balance column still holds the lapsed 50


async def test_a_refused_charge_changes_nothing(world: World) -> None:
    with pytest.raises(InsufficientCredits):
        await world.charge(11, "c1")
    with pytest.raises(FeatureNotInPlan):
        await world.charge(1, "c2", feature="advanced_editing")
    assert world.balance() == 10
    assert [e.kind for e in world.store.entries_of(USER)] == [EntryKind.GRANT]


async def test_a_repeated_charge_returns_the_first_and_another_request_under_its_key_is_refused(
    world: World,
) -> None:
    assert await world.charge(4, "c1") == 6
    again = await world.ledger.charge(
        user_id=USER, amount=4, key="c1", reference="", description="", feature=""
    )
    assert (again.applied, again.remaining_credits, world.balance()) == (False, 6, 6)
    with pytest.raises(InvalidInput):
        await world.charge(5, "c1")


async def test_a_charge_without_an_account_is_not_found() -> None:
    world = World()
    with pytest.raises(NotFound):
        await world.charge(1, "c1")


async def test_an_unlimited_plan_records_usage_and_takes_nothing(world: World) -> None:
    await world.plan(UNLIMITED, "upgrade", new_period=False)
    assert await world.charge(500, "c1") == 10
    assert world.store.s.accounts[USER].used_this_period == 500


# --- refunds ---


async def test_a_refund_goes_back_to_the_grants_the_charge_came_from_last_spent_first(
    world: World,
) -> None:
    bought = await world.give(5, Category.PURCHASED, "buy")
    allowance = world.grant("signup:grant")
    await world.charge(12, "c1")  # allowance 10, purchased 2

    await world.ledger.refund(user_id=USER, charge_key="c1", amount=3, key="r1", description="")
    assert world.taken("r1") == {bought.id: 2, allowance.id: 1}
    await world.ledger.refund(user_id=USER, charge_key="c1", amount=0, key="r2", description="")
    assert world.taken("r2") == {allowance.id: 9}
    assert world.balance() == 15

    with pytest.raises(InvalidState):
        await world.ledger.refund(user_id=USER, charge_key="c1", amount=0, key="r3", description="")


async def test_a_refund_never_exceeds_what_is_left_of_the_charge(world: World) -> None:
    await world.charge(4, "c1")
    with pytest.raises(InvalidInput):
        await world.ledger.refund(user_id=USER, charge_key="c1", amount=5, key="r1", description="")
    assert world.balance() == 6


async def test_credits_refunded_to_a_closed_grant_come_back_as_a_new_grant(world: World) -> None:
    promo = await world.give(4, Category.PROMOTIONAL, "promo")
    await world.charge(3, "c1")
    await world.grants.void(grant_id=promo.id, reason="mistake", actor="support", client_key="")
    assert world.store.s.grants[promo.id].closed_reason is CloseReason.VOIDED

    await world.ledger.refund(user_id=USER, charge_key="c1", amount=0, key="r1", description="")
    returned = world.grant(f"r1:{promo.id}")
    assert (returned.category, returned.remaining, returned.is_open) == (
        Category.PROMOTIONAL,
        3,
        True,
    )


async def test_a_refund_settles_what_is_owed_first(world: World) -> None:
    await world.give(10, Category.PURCHASED, "stripe:buy")
    await world.charge(20, "c1")  # everything spent
    clawed = await world.grants.clawback(
        user_id=USER, grant_key="stripe:buy", target=10, reference="", description=""
    )
    assert (clawed.owed, world.balance()) == (10, 0)

    await world.ledger.refund(user_id=USER, charge_key="c1", amount=0, key="r1", description="")
    account = world.store.s.accounts[USER]
    assert (account.owed, account.current_credits) == (0, 10)


async def test_refunding_a_hold_releases_it(world: World) -> None:
    await world.ledger.charge(
        user_id=USER, amount=4, key="hold", reference="", description="", feature="", hold=True
    )
    assert await world.store.held_by(None, USER) == 4  # type: ignore[arg-type]
    await world.ledger.refund(user_id=USER, charge_key="hold", amount=0, key="r", description="")
    assert await world.store.held_by(None, USER) == 0  # type: ignore[arg-type]


# --- grants ---


async def test_a_grant_settles_what_is_owed_first_and_is_granted_once(world: World) -> None:
    await world.give(5, Category.PURCHASED, "stripe:a")
    await world.charge(15, "c1")
    await world.grants.clawback(
        user_id=USER, grant_key="stripe:a", target=5, reference="", description=""
    )
    assert world.store.s.accounts[USER].owed == 5

    await world.give(8, Category.PURCHASED, "stripe:b")
    await world.give(8, Category.PURCHASED, "stripe:b")  # a repeat: nothing more
    account = world.store.s.accounts[USER]
    assert (account.owed, account.current_credits) == (0, 3)
    assert world.grant("stripe:b").remaining == 3


async def test_a_grant_takes_its_category_priority_unless_told(world: World) -> None:
    assert (await world.give(1, Category.COMPENSATION, "a")).priority == 30
    assert (await world.give(1, Category.COMPENSATION, "b", priority=5)).priority == 5


# --- clawbacks ---


async def test_a_clawback_takes_the_grant_then_the_balance_then_owes_and_is_a_state(
    world: World,
) -> None:
    bought = await world.give(20, Category.PURCHASED, "stripe:a")
    await world.charge(25, "c1")  # allowance 10 + 15 of the purchase: 5 left

    done = await world.grants.clawback(
        user_id=USER, grant_key="stripe:a", target=20, reference="", description=""
    )
    assert (done.clawed, done.owed, done.remaining_credits) == (20, 15, 0)
    assert world.store.s.grants[bought.id].clawed == 20

    repeat = await world.grants.clawback(
        user_id=USER, grant_key="stripe:a", target=20, reference="", description=""
    )
    assert (repeat.applied, repeat.owed) == (False, 15)

    # The dispute is won: what was taken back comes back, settling the debt first.
    back = await world.grants.clawback(
        user_id=USER, grant_key="stripe:a", target=0, reference="", description=""
    )
    assert (back.clawed, back.owed, back.remaining_credits) == (0, 0, 5)


async def test_a_clawback_of_an_unknown_purchase_is_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        await world.grants.clawback(
            user_id=USER, grant_key="stripe:nope", target=1, reference="", description=""
        )


# --- plans and periods ---


async def test_a_new_period_expires_the_open_allowance_and_grants_the_plans(world: World) -> None:
    await world.charge(4, "c1")
    account, applied = await world.plan(PRO, "upgrade", new_period=True)
    assert applied
    assert (account.allowance_balance, account.used_this_period) == (100, 0)
    expiry = next(e for e in world.store.entries_of(USER) if e.idempotency_key == "upgrade:expiry")
    assert expiry.allowance_delta == -6
    assert world.grant("signup:grant").closed_reason is CloseReason.RESET

    _, again = await world.plan(PRO, "upgrade", new_period=True)
    assert not again
    assert world.balance() == 100


async def test_changing_terms_without_a_new_period_keeps_the_allowance(world: World) -> None:
    account, _ = await world.plan(PRO, "terms", new_period=False)
    assert (account.terms, account.allowance_balance) == (PRO, 10)


async def test_a_failed_use_case_rolls_its_transaction_back(world: World) -> None:
    """Everything a use case wrote goes when it raises: the void of a closed grant writes
    nothing."""
    promo = await world.give(2, Category.PROMOTIONAL, "promo")
    await world.grants.void(grant_id=promo.id, reason="once", actor="s", client_key="")
    entries = len(world.store.entries_of(USER))
    with pytest.raises(InvalidState):
        await world.grants.void(grant_id=promo.id, reason="twice", actor="s", client_key="again")
    assert len(world.store.entries_of(USER)) == entries
    assert world.db.rollbacks >= 1


async def test_the_ledger_counts_what_it_moved_and_what_it_refused(world: World) -> None:
    def sample(name: str, labels: dict[str, str]) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    refused = ("studiox_charges_refused_total", {"reason": "INSUFFICIENT_CREDITS"})
    charged = ("studiox_ledger_entries_total", {"kind": "charge"})
    before = sample(*refused), sample(*charged)
    with pytest.raises(InsufficientCredits):
        await world.charge(11, "c1")
    await world.charge(1, "c2")
    await world.charge(1, "c2")  # a repeat moves nothing
    assert (sample(*refused), sample(*charged)) == (before[0] + 1, before[1] + 1)
