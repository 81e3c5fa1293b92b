"""Stripe's JSON (events and API objects, as plain dicts) read into billing's domain types. Pure
functions: what Stripe sent is treated as data, and anything missing or malformed is refused here.

Fields moved between Stripe API versions are read from both places (e.g. a subscription's period is
on its items since 2025-03-31, on the subscription before; an invoice's subscription likewise)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from services.billing.domain import (
    Invoice,
    PaymentStatus,
    Purchase,
    Subscription,
    checkout_grant_key,
    intent_grant_key,
)
from services.kit.errors import InvalidInput

# Metadata we put on Stripe objects (Stripe signs it back to us in events).
META_USER = "studiox_user_id"
META_PACK = "studiox_pack_id"
META_CREDITS = "studiox_credits"
META_PLAN = "studiox_plan_id"
# "checkout" for the PaymentIntent behind a Checkout Session, "direct" for one we create ourselves:
# only direct intents are fulfilled from payment_intent.* events (checkout ones by the session).
META_PURCHASE = "studiox_purchase"


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    created: datetime
    object: dict[str, Any]


def parse_event(data: Mapping[str, Any]) -> Event:
    event_id, kind, created = data.get("id"), data.get("type"), data.get("created")
    body = data.get("data")
    obj = body.get("object") if isinstance(body, Mapping) else None
    if (
        not isinstance(event_id, str)
        or not event_id
        or not isinstance(kind, str)
        or not isinstance(created, int)
        or not isinstance(obj, Mapping)
    ):
        raise InvalidInput("Malformed Stripe event")
    return Event(event_id, kind, _time(created) or datetime.now(UTC), dict(obj))


def _time(value: object) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if isinstance(value, int) and value > 0 else None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _id(value: object) -> str | None:
    """An id field, which Stripe sends either as a string or as the expanded object."""
    if isinstance(value, Mapping):
        return _str(value.get("id"))
    return _str(value)


def _int(value: object) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return 0


def _metadata(obj: Mapping[str, Any]) -> dict[str, str]:
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping):
        return {}
    return {str(k): str(v) for k, v in meta.items() if v is not None}


def _required_id(obj: Mapping[str, Any], what: str) -> str:
    value = _str(obj.get("id"))
    if value is None:
        raise InvalidInput(f"Malformed Stripe {what}")
    return value


def checkout_purchase(session: Mapping[str, Any]) -> Purchase | None:
    """The credit purchase a Checkout Session stands for (None for sessions that are not ours or
    not for credits)."""
    meta = _metadata(session)
    credits = _int(meta.get(META_CREDITS))
    if session.get("mode") != "payment" or credits <= 0:
        return None
    session_id = _required_id(session, "checkout session")
    if session.get("status") == "expired":
        status = PaymentStatus.EXPIRED
    elif session.get("payment_status") == "paid":
        status = PaymentStatus.SUCCEEDED
    else:
        status = PaymentStatus.PENDING
    return Purchase(
        stripe_id=session_id,
        grant_key=checkout_grant_key(session_id),
        user_id=meta.get(META_USER) or _str(session.get("client_reference_id")),
        customer_id=_id(session.get("customer")),
        credits=credits,
        pack_id=meta.get(META_PACK),
        amount_cents=_int(session.get("amount_total")),
        currency=_str(session.get("currency")) or "usd",
        status=status,
    )


_INTENT_STATUSES = {
    "succeeded": PaymentStatus.SUCCEEDED,
    "canceled": PaymentStatus.CANCELED,
    # After a confirmation attempt, this means the payment method was refused.
    "requires_payment_method": PaymentStatus.FAILED,
}


def intent_status(status: str | None) -> PaymentStatus:
    return _INTENT_STATUSES.get(status or "", PaymentStatus.PENDING)


def intent_purchase(intent: Mapping[str, Any]) -> Purchase | None:
    """The credit purchase a PaymentIntent we created directly stands for (None otherwise)."""
    meta = _metadata(intent)
    credits = _int(meta.get(META_CREDITS))
    if meta.get(META_PURCHASE) != "direct" or credits <= 0:
        return None
    intent_id = _required_id(intent, "payment intent")
    return Purchase(
        stripe_id=intent_id,
        grant_key=intent_grant_key(intent_id),
        user_id=meta.get(META_USER),
        customer_id=_id(intent.get("customer")),
        credits=credits,
        pack_id=meta.get(META_PACK),
        amount_cents=_int(intent.get("amount")),
        currency=_str(intent.get("currency")) or "usd",
        status=intent_status(_str(intent.get("status"))),
    )


def subscription(obj: Mapping[str, Any], price_plans: Mapping[str, str]) -> Subscription:
    """`price_plans` maps configured Stripe price ids to plan ids; the plan named in the metadata is
    used only for prices not configured here."""
    sub_id = _required_id(obj, "subscription")
    customer = _id(obj.get("customer"))
    if customer is None:
        raise InvalidInput("Malformed Stripe subscription")
    items = obj.get("items")
    data = items.get("data") if isinstance(items, Mapping) else None
    item: Mapping[str, Any] = data[0] if isinstance(data, list) and data else {}
    if not isinstance(item, Mapping):
        item = {}
    price_id = _id(item.get("price")) or _id(item.get("plan"))
    meta = _metadata(obj)
    plan_id = price_plans.get(price_id or "") or meta.get(META_PLAN)
    start = item.get("current_period_start", obj.get("current_period_start"))
    end = item.get("current_period_end", obj.get("current_period_end"))
    return Subscription(
        id=sub_id,
        customer_id=customer,
        user_id=meta.get(META_USER),
        status=_str(obj.get("status")) or "incomplete",
        plan_id=plan_id,
        price_id=price_id,
        item_id=_str(item.get("id")),
        cancel_at_period_end=obj.get("cancel_at_period_end") is True,
        period_start=_time(start),
        period_end=_time(end),
    )


def invoice(obj: Mapping[str, Any]) -> Invoice:
    parent = obj.get("parent")
    details = parent.get("subscription_details") if isinstance(parent, Mapping) else None
    sub = _id(obj.get("subscription")) or (
        _id(details.get("subscription")) if isinstance(details, Mapping) else None
    )
    paid = _int(obj.get("amount_paid"))
    return Invoice(
        id=_required_id(obj, "invoice"),
        customer_id=_id(obj.get("customer")),
        subscription_id=sub,
        amount_cents=paid or _int(obj.get("amount_due")),
        currency=_str(obj.get("currency")) or "usd",
    )


def checkout_subscription_id(session: Mapping[str, Any]) -> str | None:
    """The subscription a completed subscription-mode Checkout Session created (its state, read
    from Stripe, decides the plan)."""
    if session.get("mode") != "subscription":
        return None
    return _id(session.get("subscription"))


def customer_of(obj: Mapping[str, Any]) -> str | None:
    return _id(obj.get("customer"))
