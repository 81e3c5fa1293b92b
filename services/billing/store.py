"""Billing tables and queries (schema `billing`): the catalog, Stripe customers and what was placed
on their credit accounts, orders (what we started at Stripe), the subscription mirror, payments and
processed webhook events."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing.domain import (
    STATUS_ORDER,
    CreditPack,
    Order,
    OrderAction,
    OrderKind,
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
    "id, user_id, stripe_id, kind, status, amount_cents, currency, credits, plan_id, created_at, "
    "refunded_cents, dispute_status, clawed_credits"
)
ORDER_COLUMNS = (
    "ref, request_key, user_id, customer_id, kind, action, pack_id, plan_id, credits, "
    "amount_cents, currency, stripe_id"
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
        refunded_cents=m["refunded_cents"],
        dispute_status=m["dispute_status"],
        clawed_credits=m["clawed_credits"],
    )


def _order(row: Row[Any]) -> Order:
    m = row._mapping
    return Order(
        ref=m["ref"],
        request_key=m["request_key"],
        user_id=m["user_id"],
        customer_id=m["customer_id"],
        kind=OrderKind(m["kind"]),
        action=OrderAction(m["action"]),
        pack_id=m["pack_id"],
        plan_id=m["plan_id"],
        credits=m["credits"],
        amount_cents=m["amount_cents"],
        currency=m["currency"],
        stripe_id=m["stripe_id"],
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
    paid: bool
    subscription_id: str | None


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
                "SELECT stripe_customer_id, plan_id, plan_period_start, plan_changes, plan_paid, "
                "plan_subscription_id FROM billing.customers WHERE user_id = :uid FOR UPDATE"
            ),
            {"uid": user_id},
        )
    ).first()
    if row is None:
        return None
    return Placement(*row)


async def record_placement(
    conn: AsyncConnection, user_id: str, placement: PlanPlacement, changes: int
) -> None:
    await conn.execute(
        text(
            "UPDATE billing.customers SET plan_id = :plan, plan_period_start = :start, "
            "plan_changes = :changes, plan_paid = :paid, plan_subscription_id = :sub, "
            "updated_at = now() WHERE user_id = :uid"
        ),
        {
            "uid": user_id,
            "plan": placement.plan_id,
            "start": placement.period_start,
            "changes": changes,
            "paid": placement.paid,
            "sub": placement.subscription_id,
        },
    )


async def lock_plan_changes(conn: AsyncConnection, user_id: str) -> None:
    """Serializes a user's plan changes until the transaction ends (across replicas). An advisory
    lock, since a user may have no customer row yet."""
    await conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
        {"key": f"billing.plan:{user_id}"},
    )


# --- orders (what we started at Stripe) ---


async def start_order(conn: AsyncConnection, order: Order) -> Order:
    """Record the order unless its request_key is recorded; returns the recorded one (the first
    request's, for a replay)."""
    await conn.execute(
        text(
            f"""
            INSERT INTO billing.orders ({ORDER_COLUMNS})
            VALUES (:ref, :request_key, :uid, :customer, :kind, :action, :pack, :plan, :credits,
                    :amount, :currency, :stripe_id)
            ON CONFLICT (request_key) DO NOTHING
            """
        ),
        {
            "ref": order.ref,
            "request_key": order.request_key,
            "uid": order.user_id,
            "customer": order.customer_id,
            "kind": order.kind.value,
            "action": order.action.value,
            "pack": order.pack_id,
            "plan": order.plan_id,
            "credits": order.credits,
            "amount": order.amount_cents,
            "currency": order.currency,
            "stripe_id": order.stripe_id,
        },
    )
    recorded = await _order_where(conn, "request_key = :key", key=order.request_key)
    assert recorded is not None
    return recorded


async def bind_order(
    conn: AsyncConnection, ref: str, stripe_id: str, action: OrderAction | None = None
) -> None:
    """Name the Stripe object an order started (once; never another one)."""
    await conn.execute(
        text(
            "UPDATE billing.orders SET stripe_id = :sid, action = COALESCE(:action, action) "
            "WHERE ref = :ref AND (stripe_id IS NULL OR stripe_id = :sid)"
        ),
        {"ref": ref, "sid": stripe_id, "action": action.value if action else None},
    )


async def order_by_request_key(conn: AsyncConnection, request_key: str) -> Order | None:
    return await _order_where(conn, "request_key = :key", key=request_key)


async def order_by_ref(conn: AsyncConnection, ref: str) -> Order | None:
    return await _order_where(conn, "ref = :ref", ref=ref)


async def credit_order_of(conn: AsyncConnection, stripe_id: str) -> Order | None:
    """The credit purchase a Stripe object was bound to."""
    return await _order_where(conn, "stripe_id = :sid AND kind = 'credits'", sid=stripe_id)


async def _order_where(conn: AsyncConnection, where: str, **params: str) -> Order | None:
    row = (
        await conn.execute(
            text(f"SELECT {ORDER_COLUMNS} FROM billing.orders WHERE {where}"), params
        )
    ).first()
    return _order(row) if row else None


# --- subscriptions (mirror of Stripe's state) ---


async def save_subscription(conn: AsyncConnection, user_id: str, sub: Subscription) -> None:
    """Mirror Stripe's state; the user is the one whose customer the subscription belongs to, so a
    row once written under another user follows its customer."""
    await conn.execute(
        text(
            """
            INSERT INTO billing.subscriptions (id, user_id, customer_id, plan_id, price_id, status,
                cancel_at_period_end, current_period_start, current_period_end)
            VALUES (:id, :uid, :customer, :plan, :price, :status, :cancel, :start, :end)
            ON CONFLICT (id) DO UPDATE SET user_id = EXCLUDED.user_id,
                customer_id = EXCLUDED.customer_id, plan_id = EXCLUDED.plan_id,
                price_id = EXCLUDED.price_id, status = EXCLUDED.status,
                cancel_at_period_end = EXCLUDED.cancel_at_period_end,
                current_period_start = EXCLUDED.current_period_start,
                current_period_end = EXCLUDED.current_period_end, updated_at = now()
            """
        ),
        {
            "id": sub.id,
            "uid": user_id,
            "customer": sub.customer_id,
            "plan": sub.plan_id,
            "price": sub.price_id,
            "status": sub.status,
            "cancel": sub.cancel_at_period_end,
            "start": sub.period_start,
            "end": sub.period_end,
        },
    )


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
    """Record a payment or its new status. A status only moves forward (domain.STATUS_ORDER): a
    late or replayed report of an earlier state never puts one back."""
    await conn.execute(
        text(
            """
            INSERT INTO billing.payments (user_id, stripe_id, kind, status, amount_cents, currency,
                credits, pack_id, plan_id, grant_key)
            VALUES (:uid, :sid, :kind, :status, :amount, :currency, :credits, :pack, :plan, :grant)
            ON CONFLICT (stripe_id) DO UPDATE SET
                status = CASE WHEN array_position(CAST(:order AS text[]), billing.payments.status)
                                   < array_position(CAST(:order AS text[]), EXCLUDED.status)
                              THEN EXCLUDED.status ELSE billing.payments.status END,
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
            "order": [status.value for status in STATUS_ORDER],
        },
    )


async def payment_of(conn: AsyncConnection, stripe_id: str) -> Payment | None:
    row = (
        await conn.execute(
            text(f"SELECT {PAYMENT_COLUMNS} FROM billing.payments WHERE stripe_id = :sid"),
            {"sid": stripe_id},
        )
    ).first()
    return _payment(row) if row else None


async def record_money_back(
    conn: AsyncConnection,
    stripe_id: str,
    *,
    refunded_cents: int,
    dispute_status: str | None,
    clawed_credits: int,
) -> None:
    """What Stripe returned of a purchase, as last read from Stripe (a state, not a delta)."""
    await conn.execute(
        text(
            "UPDATE billing.payments SET refunded_cents = :refunded, dispute_status = :dispute, "
            "clawed_credits = :clawed, updated_at = now() WHERE stripe_id = :sid"
        ),
        {
            "sid": stripe_id,
            "refunded": refunded_cents,
            "dispute": dispute_status,
            "clawed": clawed_credits,
        },
    )


async def lock_order(conn: AsyncConnection, ref: str) -> None:
    """Reports about one payment (refunds, disputes) run one after the other: each reads Stripe
    after the previous one committed, so an older reading never replaces a newer one."""
    await conn.execute(
        text("SELECT ref FROM billing.orders WHERE ref = :ref FOR UPDATE"), {"ref": ref}
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


async def record_outcome(conn: AsyncConnection, event_id: str, outcome: str) -> None:
    await conn.execute(
        text("UPDATE billing.webhook_events SET outcome = :outcome WHERE id = :id"),
        {"id": event_id, "outcome": outcome},
    )
