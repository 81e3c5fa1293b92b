"""Billing tables and queries (schema `billing`): the catalog, Stripe customers, the subscription
mirror, payments and processed webhook events."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing.domain import (
    LIVE_STATUSES,
    CreditPack,
    Payment,
    PaymentKind,
    PaymentStatus,
    Plan,
    PlanPlacement,
    Subscription,
)

PLAN_COLUMNS = (
    "id, name, price_cents, currency, billing_interval, monthly_credits, is_unlimited, features"
)
PAYMENT_COLUMNS = (
    "id, user_id, stripe_id, kind, status, amount_cents, currency, credits, plan_id, created_at"
)
SUBSCRIPTION_COLUMNS = (
    "id, user_id, plan_id, price_id, status, cancel_at_period_end, current_period_start, "
    "current_period_end"
)


def _plan(row: Row[Any]) -> Plan:
    m = row._mapping
    return Plan(
        id=m["id"],
        name=m["name"],
        price_cents=m["price_cents"],
        currency=m["currency"],
        interval=m["billing_interval"],
        monthly_credits=m["monthly_credits"],
        is_unlimited=m["is_unlimited"],
        features=tuple(m["features"]),
    )


def _payment(row: Row[Any]) -> Payment:
    m = row._mapping
    return Payment(
        id=m["id"],
        user_id=m["user_id"],
        stripe_id=m["stripe_id"],
        kind=PaymentKind(m["kind"]),
        status=PaymentStatus(m["status"]),
        amount_cents=m["amount_cents"],
        currency=m["currency"],
        credits=m["credits"],
        plan_id=m["plan_id"],
        created_at=m["created_at"],
    )


def _subscription(row: Row[Any], customer_id: str) -> Subscription:
    m = row._mapping
    return Subscription(
        id=m["id"],
        customer_id=customer_id,
        user_id=m["user_id"],
        status=m["status"],
        plan_id=m["plan_id"],
        price_id=m["price_id"],
        item_id=None,
        cancel_at_period_end=m["cancel_at_period_end"],
        period_start=m["current_period_start"],
        period_end=m["current_period_end"],
    )


# --- catalog ---


async def list_plans(conn: AsyncConnection) -> list[Plan]:
    rows = await conn.execute(text(f"SELECT {PLAN_COLUMNS} FROM billing.plans ORDER BY sort_order"))
    return [_plan(r) for r in rows]


async def get_plan(conn: AsyncConnection, plan_id: str) -> Plan | None:
    row = (
        await conn.execute(
            text(f"SELECT {PLAN_COLUMNS} FROM billing.plans WHERE id = :id"), {"id": plan_id}
        )
    ).first()
    return _plan(row) if row else None


async def list_packs(conn: AsyncConnection) -> list[CreditPack]:
    rows = await conn.execute(
        text(
            "SELECT id, name, credits, price_cents, currency FROM billing.credit_packs "
            "ORDER BY sort_order"
        )
    )
    return [
        CreditPack(
            id=r.id, name=r.name, credits=r.credits, price_cents=r.price_cents, currency=r.currency
        )
        for r in rows
    ]


# --- customers and the plan placed from Stripe ---


@dataclass(frozen=True)
class Placement:
    """What billing last placed on the user's credit account from Stripe's state."""

    customer_id: str
    plan_id: str | None
    period_start: datetime | None
    changes: int


async def customer_id(conn: AsyncConnection, user_id: str) -> str | None:
    value = (
        await conn.execute(
            text("SELECT stripe_customer_id FROM billing.customers WHERE user_id = :uid"),
            {"uid": user_id},
        )
    ).scalar_one_or_none()
    return str(value) if value is not None else None


async def add_customer(conn: AsyncConnection, user_id: str, stripe_customer_id: str) -> str:
    """Record the user's Stripe customer unless one is recorded; returns the recorded one."""
    await conn.execute(
        text(
            "INSERT INTO billing.customers (user_id, stripe_customer_id) VALUES (:uid, :cid) "
            "ON CONFLICT DO NOTHING"
        ),
        {"uid": user_id, "cid": stripe_customer_id},
    )
    recorded = await customer_id(conn, user_id)
    assert recorded is not None
    return recorded


async def user_of_customer(conn: AsyncConnection, stripe_customer_id: str) -> str | None:
    value = (
        await conn.execute(
            text("SELECT user_id FROM billing.customers WHERE stripe_customer_id = :cid"),
            {"cid": stripe_customer_id},
        )
    ).scalar_one_or_none()
    return str(value) if value is not None else None


async def lock_placement(conn: AsyncConnection, user_id: str) -> Placement | None:
    """Locks the user's customer row for the rest of the transaction: plan syncs of one user run
    one after the other, each reading Stripe after the previous one committed."""
    row = (
        await conn.execute(
            text(
                "SELECT stripe_customer_id, plan_id, plan_period_start, plan_changes "
                "FROM billing.customers WHERE user_id = :uid FOR UPDATE"
            ),
            {"uid": user_id},
        )
    ).first()
    if row is None:
        return None
    return Placement(row[0], row[1], row[2], row[3])


async def record_placement(
    conn: AsyncConnection, user_id: str, placement: PlanPlacement, changes: int
) -> None:
    await conn.execute(
        text(
            "UPDATE billing.customers SET plan_id = :plan, plan_period_start = :start, "
            "plan_changes = :changes, updated_at = now() WHERE user_id = :uid"
        ),
        {
            "uid": user_id,
            "plan": placement.plan_id,
            "start": placement.period_start,
            "changes": changes,
        },
    )


# --- subscriptions (mirror of Stripe's state) ---


async def save_subscription(conn: AsyncConnection, user_id: str, sub: Subscription) -> None:
    await conn.execute(
        text(
            """
            INSERT INTO billing.subscriptions (id, user_id, plan_id, price_id, status,
                cancel_at_period_end, current_period_start, current_period_end)
            VALUES (:id, :uid, :plan, :price, :status, :cancel, :start, :end)
            ON CONFLICT (id) DO UPDATE SET plan_id = EXCLUDED.plan_id,
                price_id = EXCLUDED.price_id, status = EXCLUDED.status,
                cancel_at_period_end = EXCLUDED.cancel_at_period_end,
                current_period_start = EXCLUDED.current_period_start,
                current_period_end = EXCLUDED.current_period_end, updated_at = now()
            """
        ),
        {
            "id": sub.id,
            "uid": user_id,
            "plan": sub.plan_id,
            "price": sub.price_id,
            "status": sub.status,
            "cancel": sub.cancel_at_period_end,
            "start": sub.period_start,
            "end": sub.period_end,
        },
    )


async def subscriptions(
    conn: AsyncConnection, user_id: str, customer: str, *, live_only: bool = False
) -> list[Subscription]:
    rows = await conn.execute(
        text(
            f"""
            SELECT {SUBSCRIPTION_COLUMNS} FROM billing.subscriptions
            WHERE user_id = :uid AND (NOT :live_only OR status = ANY(:live))
            ORDER BY current_period_end DESC NULLS LAST, id
            """
        ),
        {"uid": user_id, "live_only": live_only, "live": sorted(LIVE_STATUSES)},
    )
    return [_subscription(r, customer) for r in rows]


# --- payments ---


async def save_payment(
    conn: AsyncConnection,
    *,
    user_id: str,
    stripe_id: str,
    kind: PaymentKind,
    status: PaymentStatus,
    amount_cents: int,
    currency: str,
    credits: int = 0,
    pack_id: str | None = None,
    plan_id: str | None = None,
    grant_key: str | None = None,
) -> None:
    """Record a payment or its new status. Success is final: a late failure or expiry report of an
    earlier attempt never undoes it."""
    await conn.execute(
        text(
            """
            INSERT INTO billing.payments (user_id, stripe_id, kind, status, amount_cents, currency,
                credits, pack_id, plan_id, grant_key)
            VALUES (:uid, :sid, :kind, :status, :amount, :currency, :credits, :pack, :plan, :grant)
            ON CONFLICT (stripe_id) DO UPDATE SET
                status = CASE WHEN billing.payments.status = 'succeeded'
                              THEN billing.payments.status ELSE EXCLUDED.status END,
                amount_cents = CASE WHEN EXCLUDED.amount_cents > 0 THEN EXCLUDED.amount_cents
                                    ELSE billing.payments.amount_cents END,
                plan_id = COALESCE(EXCLUDED.plan_id, billing.payments.plan_id),
                updated_at = now()
            """
        ),
        {
            "uid": user_id,
            "sid": stripe_id,
            "kind": kind.value,
            "status": status.value,
            "amount": amount_cents,
            "currency": currency,
            "credits": credits,
            "pack": pack_id,
            "plan": plan_id,
            "grant": grant_key,
        },
    )


async def list_payments(
    conn: AsyncConnection, user_id: str, *, limit: int, before_id: int | None
) -> Sequence[Payment]:
    rows = await conn.execute(
        text(
            f"""
            SELECT {PAYMENT_COLUMNS} FROM billing.payments
            WHERE user_id = :uid AND (CAST(:before AS bigint) IS NULL OR id < :before)
            ORDER BY id DESC
            LIMIT :limit
            """
        ),
        {"uid": user_id, "before": before_id, "limit": limit},
    )
    return [_payment(r) for r in rows]


# --- webhook events ---


async def record_event(conn: AsyncConnection, event_id: str, kind: str, created: datetime) -> bool:
    """Claim the event for this transaction; False when it was processed already. A concurrent
    delivery of the same event waits here until the first one commits (then False) or rolls back
    (then it processes the event itself)."""
    row = (
        await conn.execute(
            text(
                "INSERT INTO billing.webhook_events (id, type, created) VALUES (:id, :type, :created) "
                "ON CONFLICT DO NOTHING RETURNING id"
            ),
            {"id": event_id, "type": kind, "created": created},
        )
    ).first()
    return row is not None
