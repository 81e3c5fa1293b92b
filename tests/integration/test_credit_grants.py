"""Credits as grants: the spending order (the charge's SQL against grant_rules.spending_order on
random grant sets), concurrency across mixed grants, refunds back to their grants, expiry,
verification and the public view."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.credit.domain import Category, CloseReason, Grant
from services.credit.grant_rules import charge_takes
from services.kit.errors import reason_of
from studiox.credit.v1 import credit_pb2, credit_pb2_grpc
from tests.integration.test_credit_ledger import assert_ledger_verifies
from tests.support.cluster import Cluster
from tests.support.credit import FREE, CreditClient
from tests.support.tokens import DEFAULT_KEY, bearer

GRANT_COLUMNS = (
    "id, user_id, category, amount, remaining, priority, effective_at, expires_at, closed_at, "
    "closed_reason, source_key, reference, clawed"
)


def grants_of(cluster: Cluster, user: str) -> list[Grant]:
    rows = cluster.sql(f"SELECT {GRANT_COLUMNS} FROM credit.grants WHERE user_id = %s", user)
    return [
        Grant(
            id=r[0],
            user_id=r[1],
            category=Category(r[2]),
            amount=r[3],
            remaining=r[4],
            priority=r[5],
            effective_at=r[6],
            expires_at=r[7],
            closed_at=r[8],
            closed_reason=CloseReason(r[9]) if r[9] else None,
            source_key=r[10],
            reference=r[11],
            clawed=r[12],
        )
        for r in rows
    ]


def by_key(cluster: Cluster, user: str, key: str) -> Grant:
    return next(g for g in grants_of(cluster, user) if g.source_key == key)


def touched(entry: credit_pb2.LedgerEntry) -> dict[int, int]:
    return {int(g.grant_id): g.amount for g in entry.grants}


async def test_promotional_before_allowance_before_purchased(
    cluster: Cluster, credit: CreditClient
) -> None:
    user = await credit.open_account(FREE, purchased=20)  # allowance 10 (20), purchased 20 (40)
    await credit.give(
        user, 5, "promotional", "promo", expires_at=datetime.now(UTC) + timedelta(days=7)
    )
    await credit.give(user, 4, "compensation", "sorry")
    promo, allowance = by_key(cluster, user, "promo"), by_key(cluster, user, f"open:{user}:grant")
    comp = by_key(cluster, user, "sorry")
    purchased = next(g for g in grants_of(cluster, user) if g.category is Category.PURCHASED)

    first = await credit.charge(user, 7, key="c1")
    assert touched(first.entry) == {promo.id: -5, allowance.id: -2}
    second = await credit.charge(user, 12, key="c2")
    assert touched(second.entry) == {allowance.id: -8, comp.id: -4}
    third = await credit.charge(user, 3, key="c3")
    assert touched(third.entry) == {purchased.id: -3}
    assert (third.entry.allowance_delta, third.entry.purchased_delta) == (0, -3)
    assert third.remaining_credits == 17
    await assert_ledger_verifies(credit)


async def test_within_a_priority_the_soonest_expiry_then_the_oldest_goes_first(
    cluster: Cluster, credit: CreditClient
) -> None:
    user = await credit.open_account(FREE)
    now = datetime.now(UTC)
    await credit.give(user, 3, "promotional", "never", priority=5)
    await credit.give(
        user, 3, "promotional", "late", priority=5, expires_at=now + timedelta(days=9)
    )
    await credit.give(
        user, 3, "promotional", "soon", priority=5, expires_at=now + timedelta(days=2)
    )
    await credit.give(user, 3, "compensation", "old", priority=5)
    cluster.sql(
        "UPDATE credit.grants SET effective_at = now() - interval '1 day' "
        "WHERE user_id = %s AND source_key = 'old'",
        user,
    )
    ids = {key: by_key(cluster, user, key).id for key in ("never", "late", "soon", "old")}

    reply = await credit.charge(user, 11, key="c")
    assert touched(reply.entry) == {
        ids["soon"]: -3,
        ids["late"]: -3,
        ids["old"]: -3,
        ids["never"]: -2,
    }


async def test_a_lapsed_grant_is_never_spent_even_before_its_expiry_entry(
    cluster: Cluster, credit: CreditClient
) -> None:
    user = await credit.open_account(FREE)
    await credit.give(
        user, 50, "promotional", "gone", expires_at=datetime.now(UTC) + timedelta(hours=1)
    )
    cluster.sql(
        "UPDATE credit.grants SET expires_at = now() - interval '1 minute' "
        "WHERE user_id = %s AND source_key = 'gone'",
        user,
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await credit.charge(user, 11, key="too-much")
    assert reason_of(err.value) == "INSUFFICIENT_CREDITS"
    assert "Available: 10" in (err.value.details() or "")
    assert (await credit.account(user)).current_credits == 10  # what is live
    await credit.expire()
    gone = by_key(cluster, user, "gone")
    assert (gone.remaining, gone.closed_reason) == (0, CloseReason.EXPIRED)
    await assert_ledger_verifies(credit)


_GRANT = st.fixed_dictionaries(
    {
        "category": st.sampled_from([c.value for c in Category]),
        "amount": st.integers(1, 15),
        "priority": st.one_of(st.none(), st.sampled_from([0, 5, 10, 20, 30, 40])),
        # hours from now: None never, negative lapsed
        "expires": st.one_of(st.none(), st.integers(-50, 500).filter(lambda h: h != 0)),
        "age_minutes": st.sampled_from([0, 0, 1, 30, 600]),
    }
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(grants=st.lists(_GRANT, max_size=7), amount=st.integers(1, 60))
async def test_the_charge_statement_follows_the_python_rule(
    cluster: Cluster, grants: list[dict[str, Any]], amount: int
) -> None:
    """Random grant sets (categories, priorities, expiries, lapsed ones, ages): what the one SQL
    statement takes from each grant is what grant_rules.charge_takes says, or both refuse."""
    credit = CreditClient(cluster.channel("credit"))
    user = await credit.open_account(FREE)
    now = datetime.now(UTC)
    for i, spec in enumerate(grants):
        expires = spec["expires"]
        await credit.give(
            user,
            spec["amount"],
            spec["category"],
            f"g{i}",
            priority=spec["priority"],
            expires_at=now + timedelta(hours=abs(expires)) if expires else None,
        )
        if expires is not None and expires < 0:
            cluster.sql(
                "UPDATE credit.grants SET expires_at = now() - %s * interval '1 hour' "
                "WHERE user_id = %s AND source_key = %s",
                -expires,
                user,
                f"g{i}",
            )
        cluster.sql(
            "UPDATE credit.grants SET effective_at = effective_at - %s * interval '1 minute' "
            "WHERE user_id = %s AND source_key = %s",
            spec["age_minutes"],
            user,
            f"g{i}",
        )
    before = grants_of(cluster, user)
    expected = charge_takes(before, amount, datetime.now(UTC))
    try:
        reply = await credit.charge(user, amount, key="the-charge")
    except grpc.aio.AioRpcError as err:
        refused = reason_of(err)
        assert expected is None, (before, amount)
        assert refused == "INSUFFICIENT_CREDITS"
        return
    assert expected is not None, (before, amount)
    assert touched(reply.entry) == {c.grant.id: c.delta for c in expected}


async def test_200_concurrent_charges_across_mixed_grants_never_overspend(
    cluster: Cluster, credit: CreditClient
) -> None:
    user = await credit.open_account(FREE, purchased=30)
    now = datetime.now(UTC)
    await credit.give(user, 20, "promotional", "p", expires_at=now + timedelta(days=3))
    await credit.give(user, 15, "compensation", "c", priority=25)
    await credit.give(user, 8, "promotional", "p2", priority=50, expires_at=now + timedelta(days=1))
    total = 10 + 30 + 20 + 15 + 8
    costs = [random.Random(i).choice([1, 3, 5]) for i in range(200)]

    async def one(i: int, cost: int) -> int:
        try:
            await credit.charge(user, cost, key=f"mixed-{i}")
        except grpc.aio.AioRpcError as err:
            refused = reason_of(err)
            assert refused == "INSUFFICIENT_CREDITS"
            return 0
        return cost

    spent = sum(await asyncio.gather(*(one(i, c) for i, c in enumerate(costs))))
    account = await credit.account(user)
    assert spent <= total
    assert account.current_credits == total - spent
    assert min(costs) > account.current_credits or spent == total - account.current_credits
    assert all(g.remaining >= 0 for g in grants_of(cluster, user))
    postings = cluster.scalar(
        "SELECT -COALESCE(sum(p.delta), 0) FROM credit.postings p JOIN credit.entries e "
        "ON e.id = p.entry_id WHERE e.user_id = %s AND e.kind = 'charge'",
        user,
    )
    assert postings == spent
    await assert_ledger_verifies(credit)


async def test_a_refund_returns_to_the_grants_the_charge_came_from(
    cluster: Cluster, credit: CreditClient
) -> None:
    user = await credit.open_account(FREE, purchased=10)
    await credit.give(
        user, 4, "promotional", "promo", expires_at=datetime.now(UTC) + timedelta(days=1)
    )
    promo = by_key(cluster, user, "promo")
    allowance = by_key(cluster, user, f"open:{user}:grant")
    purchased = next(g for g in grants_of(cluster, user) if g.category is Category.PURCHASED)
    await credit.charge(user, 20, key="big")  # promo 4, allowance 10, purchased 6

    partial = await credit.refund(user, "big", key="r1", amount=8)
    assert touched(partial.entry) == {purchased.id: 6, allowance.id: 2}  # last spent first
    rest = await credit.refund(user, "big", key="r2")
    assert touched(rest.entry) == {allowance.id: 8, promo.id: 4}
    assert {g.id: g.remaining for g in grants_of(cluster, user)} == {
        promo.id: 4,
        allowance.id: 10,
        purchased.id: 10,
    }
    await assert_ledger_verifies(credit)


async def test_a_refund_to_an_expired_grant_comes_back_as_a_new_grant(
    cluster: Cluster, credit: CreditClient
) -> None:
    user = await credit.open_account(FREE)
    await credit.give(
        user, 5, "promotional", "promo", expires_at=datetime.now(UTC) + timedelta(days=1)
    )
    await credit.charge(user, 7, key="c")  # promo 5, allowance 2
    cluster.sql(
        "UPDATE credit.grants SET expires_at = now() - interval '1 second' "
        "WHERE user_id = %s AND source_key = 'promo'",
        user,
    )
    await credit.expire()  # the promo grant closes with nothing left in it

    reply = await credit.refund(user, "c", key="r")
    returned = by_key(cluster, user, "r:" + str(by_key(cluster, user, "promo").id))
    assert returned.category is Category.PROMOTIONAL
    assert returned.remaining == 5
    assert returned.expires_at is not None
    assert timedelta(days=29) < returned.expires_at - datetime.now(UTC) <= timedelta(days=30)
    assert reply.remaining_credits == 15
    with pytest.raises(grpc.aio.AioRpcError) as again:
        await credit.refund(user, "c", key="r-again")
    assert reason_of(again.value) == "INVALID_STATE"
    await assert_ledger_verifies(credit)


async def test_expiry_in_batches_names_the_grants_and_runs_once(
    cluster: Cluster, credit: CreditClient
) -> None:
    users = [await credit.open_account(FREE) for _ in range(6)]
    soon = datetime.now(UTC) + timedelta(hours=1)
    for i, user in enumerate(users):
        await credit.give(user, 3 + i, "promotional", "promo", expires_at=soon)
        await credit.give(user, 2, "compensation", "comp", expires_at=soon)
    await credit.charge(users[0], 14, key="spent-all")  # promo 3 + allowance 10 + comp 1

    later = soon + timedelta(minutes=1)
    assert await credit.expire(as_of=later, batch=4) >= 12
    assert await credit.expire(as_of=later) == 0  # nothing left to expire
    for i, user in enumerate(users):
        # One entry per account and batch (a batch boundary may split an account's grants).
        expired = cluster.sql(
            "SELECT sum(p.delta), count(*) FROM credit.entries e "
            "JOIN credit.postings p ON p.entry_id = e.id "
            "WHERE e.user_id = %s AND e.kind = 'expiry'",
            user,
        )
        # the spent promo closes without a posting
        assert expired == [(-1 if i == 0 else -(3 + i + 2), 1 if i == 0 else 2)]
        assert (await credit.account(user)).current_credits == (0 if i == 0 else 10)
    await assert_ledger_verifies(credit)


async def test_verify_checks_grants_against_balances_and_postings(
    cluster: Cluster, credit: CreditClient
) -> None:
    user = await credit.open_account(FREE)
    grant = by_key(cluster, user, f"open:{user}:grant")
    cluster.sql("UPDATE credit.grants SET remaining = 9 WHERE id = %s", grant.id)
    try:
        problems = {(d.user_id, d.problem) for d in (await credit.verify()).differences}
        assert (user, f"grant {grant.id}") in problems
        assert (user, "allowance grants") in problems
    finally:
        cluster.sql("UPDATE credit.grants SET remaining = 10 WHERE id = %s", grant.id)
    await assert_ledger_verifies(credit)


async def test_the_public_view_lists_live_grants_and_what_each_entry_touched(
    cluster: Cluster, credit: CreditClient
) -> None:
    user = await credit.open_account(FREE, purchased=5)
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(days=5)
    await credit.give(user, 3, "promotional", "promo", expires_at=expires)
    await credit.charge(user, 4, key="c")
    stub = credit_pb2_grpc.CreditServiceStub(cluster.channel("credit"))
    md = bearer(DEFAULT_KEY.mint(user))

    credits = (await stub.GetCredits(credit_pb2.GetCreditsRequest(), metadata=md)).credits
    assert (credits.current_credits, credits.allowance_credits, credits.purchased_credits) == (
        14,
        9,
        5,
    )
    assert (credits.bonus_credits, credits.owed_credits) == (0, 0)
    grants = [(g.category, g.remaining) for g in credits.grants]
    assert grants == [("allowance", 9), ("purchased", 5)]  # the spent promo is not live credit
    allowance = credits.grants[0]
    assert allowance.expires_at.ToDatetime(tzinfo=UTC) == credits.credit_reset_at.ToDatetime(
        tzinfo=UTC
    )
    assert not credits.grants[1].HasField("expires_at")

    page = await stub.ListTransactions(credit_pb2.ListTransactionsRequest(), metadata=md)
    charge = page.transactions[0]
    assert charge.type == "credit_use"
    assert sorted((g.category, g.amount) for g in charge.grants) == [
        ("allowance", -1),
        ("promotional", -3),
    ]
    promo = page.transactions[1]
    assert (promo.type, [g.category for g in promo.grants]) == ("credit_add", ["promotional"])
