"""Stripe's JSON (events and API objects, as plain dicts) read into billing's domain types. Pure
functions, and strict ones: what Stripe sent is data, and a value no genuine Stripe object carries
(NUL or overlong ids, amounts outside 0..2^31-1, unknown currencies, absurd times) is refused here,
before it can reach the database or a decision. A malformed event envelope is InvalidInput (400);
a malformed object inside a signed event is Refused (acknowledged, changes nothing).

Fields moved between Stripe API versions are read from both places (e.g. a subscription's period is
on its items since 2025-03-31, on the subscription before; an invoice's subscription and payment
likewise)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from services.billing.domain import (
    WITHDRAWN_DISPUTES,
    MoneyBack,
    OrderAction,
    PaymentStatus,
    Refused,
    StripePayment,
)
from services.billing.plan_rules import Invoice, Subscription
from services.kit.errors import InvalidInput

# Metadata we put on Stripe objects (Stripe signs it back to us in events).
META_USER = "studiox_user_id"
META_PACK = "studiox_pack_id"
META_CREDITS = "studiox_credits"
META_PLAN = "studiox_plan_id"
META_ORDER = "studiox_order"
# "checkout" for the PaymentIntent behind a Checkout Session, "direct" for one we create ourselves:
# only direct intents are fulfilled from payment_intent.* events (checkout ones by the session).
META_PURCHASE = "studiox_purchase"

# Stripe ids are short ASCII tokens (cs_…, pi_…, cus_…; legacy plan ids may carry - and .).
_ID = re.compile(r"[A-Za-z0-9_.\-]{1,255}")
_EVENT_TYPE = re.compile(r"[a-z0-9_.]{1,100}")
_STATUS = re.compile(r"[a-z_]{1,40}")
_CURRENCY = re.compile(r"[a-z]{3}")
MAX_AMOUNT = 2**31 - 1  # what our integer columns (and Stripe's amounts) hold
MAX_UNIX_TIME = 2**32  # year 2106: anything later is not a Stripe timestamp
MAX_METADATA_VALUE = 500  # Stripe's own limit


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    created: datetime
    object: dict[str, Any]


def parse_event(data: Mapping[str, Any]) -> Event:
    event_id, kind = _matched(_ID, data.get("id")), _matched(_EVENT_TYPE, data.get("type"))
    created = data.get("created")
    body = data.get("data")
    obj = body.get("object") if isinstance(body, Mapping) else None
    if (
        event_id is None
        or kind is None
        or not isinstance(created, int)
        or isinstance(created, bool)
        or not 0 <= created < MAX_UNIX_TIME
        or not isinstance(obj, Mapping)
    ):
        raise InvalidInput("Malformed Stripe event")
    return Event(event_id, kind, datetime.fromtimestamp(created, UTC), dict(obj))


def _matched(pattern: re.Pattern[str], value: object) -> str | None:
    return value if isinstance(value, str) and pattern.fullmatch(value) is not None else None


# --- field readers: None when absent, Refused when present but impossible ---


def _id(value: object, what: str = "id") -> str | None:
    """An id field, which Stripe sends either as a string or as the expanded object."""
    if isinstance(value, Mapping):
        value = value.get("id")
    if value is None or value == "":
        return None
    matched = _matched(_ID, value)
    if matched is None:
        raise Refused(f"malformed {what}")
    return matched


def _required_id(obj: Mapping[str, Any], what: str) -> str:
    value = _id(obj.get("id"), what)
    if value is None:
        raise Refused(f"{what} without an id")
    return value


def _amount(value: object, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_AMOUNT:
        raise Refused(f"{what} out of range")
    return value


def _currency(value: object) -> str:
    matched = _matched(_CURRENCY, value)
    if matched is None:
        raise Refused("malformed currency")
    return matched


def _status(value: object, what: str) -> str | None:
    if value is None:
        return None
    matched = _matched(_STATUS, value)
    if matched is None:
        raise Refused(f"malformed {what} status")
    return matched


def _time(value: object) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < MAX_UNIX_TIME:
        raise Refused("timestamp out of range")
    return datetime.fromtimestamp(value, UTC)


def _text(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or "\x00" in value or len(value) > 2048:
        raise Refused("malformed text field")
    return value


def _metadata(obj: Mapping[str, Any]) -> dict[str, str]:
    meta = obj.get("metadata")
    if meta is None:
        return {}
    if not isinstance(meta, Mapping):
        raise Refused("malformed metadata")
    values: dict[str, str] = {}
    for key, value in meta.items():
        if value is None:
            continue
        if (
            not isinstance(value, str)
            or "\x00" in value
            or "\x00" in str(key)
            or len(value) > MAX_METADATA_VALUE
        ):
            raise Refused("malformed metadata")
        values[str(key)] = value
    return values


def _order_ref(meta: Mapping[str, str]) -> str | None:
    return _matched(_ID, meta.get(META_ORDER))


# --- objects ---


def checkout_payment(session: Mapping[str, Any]) -> StripePayment:
    """A Checkout Session (any mode), with its amount and state."""
    session_id = _required_id(session, "checkout session")
    meta = _metadata(session)
    status = _status(session.get("status"), "checkout session") or "open"
    if status == "expired":
        paid_as = PaymentStatus.EXPIRED
    elif session.get("payment_status") == "paid":
        paid_as = PaymentStatus.SUCCEEDED
    else:
        paid_as = PaymentStatus.PENDING
    return StripePayment(
        id=session_id,
        action=OrderAction.CHECKOUT,
        mode=_status(session.get("mode"), "checkout mode"),
        customer_id=_id(session.get("customer"), "customer"),
        amount_cents=_amount(session.get("amount_total"), "amount") or 0,
        currency=_currency(session.get("currency") or "usd"),
        status=paid_as,
        stripe_status=status,
        order_ref=_order_ref(meta),
        url=_text(session.get("url")) if status == "open" else "",
        payment_intent_id=_id(session.get("payment_intent"), "payment intent"),
    )


_INTENT_STATUSES = {
    "succeeded": PaymentStatus.SUCCEEDED,
    "canceled": PaymentStatus.CANCELED,
    # After a confirmation attempt, this means the payment method was refused.
    "requires_payment_method": PaymentStatus.FAILED,
}


def intent_status(status: str | None) -> PaymentStatus:
    return _INTENT_STATUSES.get(status or "", PaymentStatus.PENDING)


def intent_payment(intent: Mapping[str, Any]) -> StripePayment:
    """A PaymentIntent. Succeeded only when Stripe received its whole amount."""
    intent_id = _required_id(intent, "payment intent")
    status = _status(intent.get("status"), "payment intent") or ""
    amount = _amount(intent.get("amount"), "amount") or 0
    received = _amount(intent.get("amount_received"), "amount received")
    paid_as = intent_status(status)
    if paid_as is PaymentStatus.SUCCEEDED and received is not None and received != amount:
        raise Refused("payment intent succeeded for another amount than it asked")
    return StripePayment(
        id=intent_id,
        action=OrderAction.INTENT,
        mode=None,
        customer_id=_id(intent.get("customer"), "customer"),
        amount_cents=amount,
        currency=_currency(intent.get("currency") or "usd"),
        status=paid_as,
        stripe_status=status,
        order_ref=_order_ref(_metadata(intent)),
        client_secret=_text(intent.get("client_secret")),
    )


def purchase_kind(intent: Mapping[str, Any]) -> str | None:
    """ "direct" for a PaymentIntent we confirm ourselves, "checkout" for one behind a Checkout
    Session, None for one that is not a StudioX purchase."""
    return _metadata(intent).get(META_PURCHASE)


def subscription(obj: Mapping[str, Any], price_plans: Mapping[str, str]) -> Subscription:
    """`price_plans` maps configured Stripe price ids to plan ids; the plan named in the metadata
    (which only we can set) is used only for prices not configured here, and in every case the
    price must be the catalog's (checked by domain.plan_of)."""
    sub_id = _required_id(obj, "subscription")
    customer = _id(obj.get("customer"), "customer")
    if customer is None:
        raise Refused("subscription without a customer")
    items = obj.get("items")
    data = items.get("data") if isinstance(items, Mapping) else None
    item: object = data[0] if isinstance(data, list) and data else {}
    if not isinstance(item, Mapping):
        raise Refused("malformed subscription item")
    price = item.get("price") or item.get("plan")
    price_id = _id(price, "price")
    price_cents = currency = None
    if isinstance(price, Mapping):
        price_cents = _amount(price.get("unit_amount", price.get("amount")), "price")
        currency = _currency(price.get("currency")) if price.get("currency") else None
    meta = _metadata(obj)
    plan_id = price_plans.get(price_id or "") or meta.get(META_PLAN)
    start = item.get("current_period_start", obj.get("current_period_start"))
    end = item.get("current_period_end", obj.get("current_period_end"))
    latest = obj.get("latest_invoice")
    return Subscription(
        id=sub_id,
        customer_id=customer,
        status=_status(obj.get("status"), "subscription") or "incomplete",
        plan_id=plan_id,
        price_id=price_id,
        item_id=_id(item.get("id"), "subscription item"),
        cancel_at_period_end=obj.get("cancel_at_period_end") is True,
        period_start=_time(start),
        period_end=_time(end),
        created=_time(obj.get("created")),
        price_cents=price_cents,
        currency=currency,
        latest_invoice_id=_id(latest, "invoice"),
        invoice_paid=isinstance(latest, Mapping) and latest.get("status") == "paid",
    )


def invoice(obj: Mapping[str, Any]) -> Invoice:
    parent = obj.get("parent")
    details = parent.get("subscription_details") if isinstance(parent, Mapping) else None
    sub = _id(obj.get("subscription"), "subscription") or (
        _id(details.get("subscription"), "subscription") if isinstance(details, Mapping) else None
    )
    paid = _amount(obj.get("amount_paid"), "amount paid")
    due = _amount(obj.get("amount_due"), "amount due")
    return Invoice(
        id=_required_id(obj, "invoice"),
        customer_id=_id(obj.get("customer"), "customer"),
        subscription_id=sub,
        amount_cents=paid or due or 0,
        currency=_currency(obj.get("currency") or "usd"),
        status=_status(obj.get("status"), "invoice"),
        payment_intent_id=_invoice_intent(obj),
    )


def _invoice_intent(obj: Mapping[str, Any]) -> str | None:
    """The PaymentIntent that paid the invoice: `payment_intent` before 2025-03-31, the (expanded)
    `payments` list since."""
    direct = _id(obj.get("payment_intent"), "payment intent")
    if direct is not None:
        return direct
    payments = obj.get("payments")
    data = payments.get("data") if isinstance(payments, Mapping) else None
    for entry in data if isinstance(data, list) else []:
        payment = entry.get("payment") if isinstance(entry, Mapping) else None
        if isinstance(payment, Mapping) and payment.get("type") == "payment_intent":
            found = _id(payment.get("payment_intent"), "payment intent")
            if found is not None:
                return found
    return None


def checkout_subscription_id(session: Mapping[str, Any]) -> str | None:
    """The subscription a completed subscription-mode Checkout Session created (its state, read
    from Stripe, decides the plan)."""
    if session.get("mode") != "subscription":
        return None
    return _id(session.get("subscription"), "subscription")


def customer_of(obj: Mapping[str, Any]) -> str | None:
    return _id(obj.get("customer"), "customer")


@dataclass(frozen=True)
class OpenCheckout:
    """An open subscription-mode Checkout Session of a customer, as Stripe lists it."""

    id: str
    plan_id: str | None
    order_ref: str | None
    url: str
    expires_at: datetime | None


def open_checkout(session: Mapping[str, Any]) -> OpenCheckout | None:
    """The session if it is an open subscription checkout (None otherwise)."""
    if session.get("mode") != "subscription" or session.get("status") != "open":
        return None
    meta = _metadata(session)
    return OpenCheckout(
        id=_required_id(session, "checkout session"),
        plan_id=meta.get(META_PLAN),
        order_ref=_order_ref(meta),
        url=_text(session.get("url")),
        expires_at=_time(session.get("expires_at")),
    )


# --- money taken back: refunds and disputes ---


def reversal_subject(obj: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(PaymentIntent, Charge) a charge, refund or dispute object names (either may be absent)."""
    if obj.get("object") == "charge":
        return _id(obj.get("payment_intent"), "payment intent"), _required_id(obj, "charge")
    return _id(obj.get("payment_intent"), "payment intent"), _id(obj.get("charge"), "charge")


def intent_of_charge(charge: Mapping[str, Any]) -> str | None:
    return _id(charge.get("payment_intent"), "payment intent")


def money_back(intent: Mapping[str, Any], disputes: list[dict[str, Any]]) -> MoneyBack:
    """What Stripe returned of a PaymentIntent (read with its latest charge expanded) and its
    disputes."""
    amount = _amount(intent.get("amount_received"), "amount received") or 0
    charge = intent.get("latest_charge")
    refunded = 0
    if isinstance(charge, Mapping):
        refunded = _amount(charge.get("amount_refunded"), "amount refunded") or 0
    withdrawn = 0
    latest: tuple[int, str] | None = None
    for dispute in disputes:
        status = _status(dispute.get("status"), "dispute") or ""
        if status in WITHDRAWN_DISPUTES:
            withdrawn += _amount(dispute.get("amount"), "dispute amount") or 0
        created = dispute.get("created")
        order = created if isinstance(created, int) and not isinstance(created, bool) else 0
        if latest is None or order >= latest[0]:
            latest = (order, status)
    return MoneyBack(amount, refunded, withdrawn, latest[1] if latest else None)
