"""The payment history's rows (table `billing.payments`): each payment or plan invoice Stripe
reported, its status (which only moves forward), and what Stripe returned of it (refunds,
disputes) with the credits taken back for that."""

from __future__ import annotations

from collections.abc import Sequence

from services.billing.domain import STATUS_ORDER, Payment, PaymentKind, PaymentStatus
from services.kit.sql import Connection, Row, text

PAYMENT_COLUMNS = (
    "id, user_id, stripe_id, kind, status, amount_cents, currency, credits, plan_id, created_at, "
    "refunded_cents, dispute_status, clawed_credits"
)


def _payment(row: Row) -> Payment:
    m = row._asdict()
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


async def save_payment(
    conn: Connection,
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


async def payment_of(conn: Connection, stripe_id: str) -> Payment | None:
    row = (
        await conn.execute(
            text(f"SELECT {PAYMENT_COLUMNS} FROM billing.payments WHERE stripe_id = :sid"),  # noqa: S608 - a constant column list
            {"sid": stripe_id},
        )
    ).first()
    return _payment(row) if row else None


async def record_money_back(
    conn: Connection,
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


async def list_payments(
    conn: Connection, user_id: str, *, limit: int, before_id: int | None
) -> Sequence[Payment]:
    rows = await conn.execute(
        text(
            f"""
            SELECT {PAYMENT_COLUMNS} FROM billing.payments
            WHERE user_id = :uid AND (CAST(:before AS bigint) IS NULL OR id < :before)
            ORDER BY id DESC
            LIMIT :limit
            """  # noqa: S608
        ),
        {"uid": user_id, "before": before_id, "limit": limit},
    )
    return [_payment(r) for r in rows]
