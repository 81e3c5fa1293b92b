"""Billing tables and queries (schema `billing`): the catalog, Stripe customers and what was placed
on their credit accounts, orders (what we started at Stripe), the subscription mirror and processed
webhook events. The payment history's rows: payment_store.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.billing.domain import CreditPack, Order, OrderAction, OrderKind, Plan
from services.billing.plan_rules import PlanPlacement, Subscription
from services.kit.sql import Connection, Row, text

PLAN_COLUMNS = (
    "id, name, price_cents, currency, billing_interval, monthly_credits, is_unlimited, features"
)
ORDER_COLUMNS = (
    "ref, request_key, user_id, customer_id, kind, action, pack_id, plan_id, credits, "
    "amount_cents, currency, stripe_id"
)


def _plan(row: Row) -> Plan:
    m = row._asdict()
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


def _order(row: Row) -> Order:
    m = row._asdict()
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


async def list_plans(conn: Connection) -> list[Plan]:
    rows = await conn.execute(text(f"SELECT {PLAN_COLUMNS} FROM billing.plans ORDER BY sort_order"))
    return [_plan(r) for r in rows]


async def get_plan(conn: Connection, plan_id: str) -> Plan | None:
    row = (
        await conn.execute(
            text(f"SELECT {PLAN_COLUMNS} FROM billing.plans WHERE id = :id"), {"id": plan_id}
        )
    ).first()
    return _plan(row) if row else None


async def list_packs(conn: Connection) -> list[CreditPack]:
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


async def customer_id(conn: Connection, user_id: str) -> str | None:
    value = (
        await conn.execute(
            text("SELECT stripe_customer_id FROM billing.customers WHERE user_id = :uid"),
            {"uid": user_id},
        )
    ).scalar_one_or_none()
    return str(value) if value is not None else None


async def add_customer(conn: Connection, user_id: str, stripe_customer_id: str) -> str:
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


async def user_of_customer(conn: Connection, stripe_customer_id: str) -> str | None:
    value = (
        await conn.execute(
            text("SELECT user_id FROM billing.customers WHERE stripe_customer_id = :cid"),
            {"cid": stripe_customer_id},
        )
    ).scalar_one_or_none()
    return str(value) if value is not None else None


async def lock_placement(conn: Connection, user_id: str) -> Placement | None:
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
    conn: Connection, user_id: str, placement: PlanPlacement, changes: int
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


async def lock_plan_changes(conn: Connection, user_id: str) -> None:
    """Serializes a user's plan changes until the transaction ends (across replicas). An advisory
    lock, since a user may have no customer row yet."""
    await conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
        {"key": f"billing.plan:{user_id}"},
    )


# --- orders (what we started at Stripe) ---


async def start_order(conn: Connection, order: Order) -> Order:
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
    conn: Connection, ref: str, stripe_id: str, action: OrderAction | None = None
) -> None:
    """Name the Stripe object an order started (once; never another one)."""
    await conn.execute(
        text(
            "UPDATE billing.orders SET stripe_id = :sid, action = COALESCE(:action, action) "
            "WHERE ref = :ref AND (stripe_id IS NULL OR stripe_id = :sid)"
        ),
        {"ref": ref, "sid": stripe_id, "action": action.value if action else None},
    )


async def order_by_request_key(conn: Connection, request_key: str) -> Order | None:
    return await _order_where(conn, "request_key = :key", key=request_key)


async def order_by_ref(conn: Connection, ref: str) -> Order | None:
    return await _order_where(conn, "ref = :ref", ref=ref)


async def credit_order_of(conn: Connection, stripe_id: str) -> Order | None:
    """The credit purchase a Stripe object was bound to."""
    return await _order_where(conn, "stripe_id = :sid AND kind = 'credits'", sid=stripe_id)


async def _order_where(conn: Connection, where: str, **params: str) -> Order | None:
    row = (
        await conn.execute(
            text(f"SELECT {ORDER_COLUMNS} FROM billing.orders WHERE {where}"), params
        )
    ).first()
    return _order(row) if row else None


async def lock_order(conn: Connection, ref: str) -> None:
    """Reports about one payment (refunds, disputes) run one after the other: each reads Stripe
    after the previous one committed, so an older reading never replaces a newer one."""
    await conn.execute(
        text("SELECT ref FROM billing.orders WHERE ref = :ref FOR UPDATE"), {"ref": ref}
    )


# --- subscriptions (mirror of Stripe's state) ---


async def save_subscription(conn: Connection, user_id: str, sub: Subscription) -> None:
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


# --- webhook events ---


async def record_event(conn: Connection, event_id: str, kind: str, created: datetime) -> bool:
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


async def record_outcome(conn: Connection, event_id: str, outcome: str) -> None:
    await conn.execute(
        text("UPDATE billing.webhook_events SET outcome = :outcome WHERE id = :id"),
        {"id": event_id, "outcome": outcome},
    )
