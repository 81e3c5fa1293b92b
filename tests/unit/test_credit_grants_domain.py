"""Grant rules without I/O: spending order, refunds back to grants, clawbacks and debt, support's
requests, the admin role check, and billing's proportional clawback and history status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.billing.domain import MoneyBack, Payment, PaymentKind, PaymentStatus, clawback_credits
from services.credit.admin_rules import admin_grant, parse_duration
from services.credit.domain import Category, CloseReason, Grant
from services.credit.grant_rules import (
    charge_takes,
    clawback_plan,
    consume,
    refund_returns,
    returned_grant,
    spending_order,
)
from services.kit.access import check_admin
from services.kit.errors import InvalidInput, InvalidState, PermissionDenied

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def grant(
    gid: int,
    category: Category = Category.PROMOTIONAL,
    remaining: int = 5,
    priority: int = 10,
    expires: timedelta | None = None,
    age: timedelta = timedelta(0),
    closed: bool = False,
) -> Grant:
    return Grant(
        id=gid,
        user_id="u",
        category=category,
        amount=max(remaining, 10),
        remaining=0 if closed else remaining,
        priority=priority,
        effective_at=NOW - timedelta(days=1) - age,
        expires_at=NOW + expires if expires is not None else None,
        source_key=f"g{gid}",
        closed_at=NOW if closed else None,
        closed_reason=CloseReason.EXPIRED if closed else None,
    )


def test_priority_then_soonest_expiry_then_oldest() -> None:
    grants = [
        grant(1, priority=40),
        grant(2, priority=10),  # never expires
        grant(3, priority=10, expires=timedelta(days=9)),
        grant(4, priority=10, expires=timedelta(days=2)),
        grant(5, priority=10, age=timedelta(days=3)),  # older, never expires
        grant(6, priority=0, expires=-timedelta(seconds=1)),  # lapsed
        grant(7, priority=0, closed=True),
    ]
    assert [g.id for g in spending_order(grants, NOW)] == [4, 3, 5, 2, 1]
    assert charge_takes(grants, 26, NOW) is None
    takes = charge_takes(grants, 12, NOW)
    assert takes is not None
    assert [(c.grant.id, c.delta) for c in takes] == [(4, -5), (3, -5), (5, -2)]


@given(
    st.lists(st.tuples(st.integers(0, 20), st.integers(0, 3), st.booleans()), max_size=8),
    st.integers(0, 80),
)
def test_consume_never_takes_more_than_a_grant_holds(
    specs: list[tuple[int, int, bool]], amount: int
) -> None:
    grants = [
        grant(i, remaining=r, priority=p, expires=-timedelta(hours=1) if lapsed else None)
        for i, (r, p, lapsed) in enumerate(specs)
    ]
    changes = consume(grants, amount, NOW)
    live = sum(g.remaining for g in grants if g.is_live(NOW))
    assert -sum(c.delta for c in changes) == min(amount, live)
    assert all(0 < -c.delta <= c.grant.remaining and c.grant.is_live(NOW) for c in changes)


def test_refunds_go_back_last_spent_first_and_never_exceed_the_charge() -> None:
    promo, allowance, bought = (
        grant(1),
        grant(2, Category.ALLOWANCE, priority=20),
        grant(3, Category.PURCHASED, priority=40),
    )
    left = [(promo, 4), (allowance, 10), (bought, 6)]
    assert [(g.id, n) for g, n in refund_returns(left, 8)] == [(3, 6), (2, 2)]
    assert [(g.id, n) for g, n in refund_returns(left, 0)] == [(3, 6), (2, 10), (1, 4)]
    with pytest.raises(InvalidInput):
        refund_returns(left, 21)
    with pytest.raises(InvalidState):
        refund_returns([(promo, 0)], 0)


def test_credits_of_a_closed_grant_come_back_as_a_new_one() -> None:
    expiring = grant(1, expires=timedelta(days=1), priority=7)
    back = returned_grant(expiring, Category.PROMOTIONAL, 3, NOW)
    assert (back.category, back.priority, back.expires_at) == (
        Category.PROMOTIONAL,
        7,
        NOW + timedelta(days=30),
    )
    assert (
        returned_grant(grant(2, Category.PURCHASED), Category.PURCHASED, 3, NOW).expires_at is None
    )
    assert returned_grant(None, Category.ALLOWANCE, 3, NOW).expires_at is None


def test_a_clawback_takes_the_grant_then_the_balance_then_owes() -> None:
    bought = grant(1, Category.PURCHASED, remaining=5, priority=40)
    others = [grant(2, Category.ALLOWANCE, remaining=3, priority=20), bought]
    plan = clawback_plan(bought, others, owed=0, target=10, now=NOW)
    assert [(c.grant.id, c.delta) for c in plan.changes] == [(1, -5), (2, -3)]
    assert plan.owed_delta == 2
    clawed = Grant(**{**bought.__dict__, "remaining": 0, "clawed": 10})
    back = clawback_plan(clawed, [], owed=2, target=0, now=NOW)
    assert back.owed_delta == -2
    assert [(c.grant.id, c.delta) for c in back.changes] == [(1, 8)]
    assert clawback_plan(clawed, [], owed=0, target=10, now=NOW).changes == []


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        ("30d", 2_592_000),
        ("12h", 43_200),
        ("2w", 1_209_600),
        ("1d12h", 129_600),
        ("P30D", 2_592_000),
        ("PT90M", 5_400),
    ],
)
def test_durations(raw: str, seconds: int) -> None:
    assert parse_duration(raw) == timedelta(seconds=seconds)


@pytest.mark.parametrize("raw", ["", "soon", "30", "0d", "P", "PT", "-3d", "3y"])
def test_bad_durations(raw: str) -> None:
    with pytest.raises(InvalidInput):
        parse_duration(raw)


def test_admin_grants_are_promotional_or_compensation_with_a_reason() -> None:
    ok = admin_grant(
        user_id="u", amount=5, category="", reason=" why ", actor="cli:a", now=NOW, expires_in="7d"
    )
    assert (ok.category, ok.priority, ok.reason, ok.expires_at) == (
        Category.PROMOTIONAL,
        10,
        "why",
        NOW + timedelta(days=7),
    )
    for bad in (
        {"category": "purchased"},
        {"reason": ""},
        {"expires_at": NOW - timedelta(seconds=1)},
        {"expires_at": NOW + timedelta(days=4000)},
        {"expires_in": "1d", "expires_at": NOW + timedelta(days=1)},
        {"priority": -1},
    ):
        values = {"user_id": "u", "amount": 5, "category": "compensation", "reason": "r"}
        with pytest.raises(InvalidInput):
            admin_grant(**{**values, **bad}, actor="cli:a", now=NOW)  # type: ignore[arg-type]


def test_the_admin_role_claim() -> None:
    check_admin({"metadata": {"role": "admin"}}, ["metadata.role"], ["admin"])
    check_admin({"org_role": ["member", "org:admin"]}, ["org_role"], ["org:admin"])
    for claims, paths, roles in (
        ({"metadata": {"role": "member"}}, ["metadata.role"], ["admin"]),
        ({"metadata": "admin"}, ["metadata.role"], ["admin"]),
        ({"org_role": "org:admin"}, ["metadata.role"], ["admin"]),
        ({"metadata": {"role": "admin"}}, [], ["admin"]),
        ({"metadata": {"role": ""}}, ["metadata.role"], [""]),
    ):
        with pytest.raises(PermissionDenied):
            check_admin(claims, paths, roles)


def test_clawback_is_proportional_and_rounds_up() -> None:
    assert clawback_credits(100, MoneyBack(3500, 1750, 0, None)) == 50
    assert clawback_credits(100, MoneyBack(3500, 1, 0, None)) == 1
    assert clawback_credits(100, MoneyBack(3500, 1000, 3500, "lost")) == 100
    assert clawback_credits(100, MoneyBack(3500, 0, 0, "won")) == 0


def test_history_shows_refunds_and_disputes() -> None:
    def payment(refunded: int = 0, dispute: str | None = None) -> Payment:
        return Payment(
            1,
            "u",
            "pi",
            PaymentKind.CREDITS,
            PaymentStatus.SUCCEEDED,
            3500,
            "usd",
            100,
            None,
            NOW,
            refunded,
            dispute,
        )

    assert payment().shown_status == "succeeded"
    assert payment(100).shown_status == "partially_refunded"
    assert payment(3500).shown_status == "refunded"
    assert payment(0, "needs_response").shown_status == "disputed"
    assert payment(0, "won").shown_status == "succeeded"
