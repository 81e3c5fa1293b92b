"""Billing rules, free of gRPC, SQL and network I/O: the catalog (plans and credit packs), which
pack or plan a request names, orders and payments, whether what Stripe reports matches the order
we started, what is taken back when Stripe returns money, and the idempotency keys that make every
fulfilment happen once. Which plan Stripe's subscriptions put an account on: plan_rules.py."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from services.kit.errors import InvalidInput
from services.kit.features import feature_of
from services.task.pricing import PriceRule

FREE_PLAN = "free"
MAX_CLIENT_KEY_LENGTH = 200
MAX_PAYMENT_METHOD_LENGTH = 255


@dataclass(frozen=True)
class Plan:
    id: str
    name: str
    price_cents: int
    currency: str
    interval: str
    monthly_credits: int
    is_unlimited: bool
    features: tuple[str, ...]


@dataclass(frozen=True)
class CreditPack:
    id: str
    name: str
    credits: int
    price_cents: int
    currency: str

    def describe(self) -> str:
        return (
            f"{self.id} ({self.credits} credits, {format_price(self.price_cents, self.currency)})"
        )


class PaymentKind(Enum):
    CREDITS = "credits"
    SUBSCRIPTION = "subscription"


class PaymentStatus(Enum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELED = "canceled"
    REFUNDED = "refunded"


# A payment's history only moves forward: a late or replayed report of an earlier state (pending
# after expired, failed after succeeded) never puts it back.
STATUS_ORDER = (
    PaymentStatus.PENDING,
    PaymentStatus.FAILED,
    PaymentStatus.CANCELED,
    PaymentStatus.EXPIRED,
    PaymentStatus.SUCCEEDED,
    PaymentStatus.REFUNDED,
)


class Refused(Exception):
    """A webhook event whose objects do not match our records or Stripe's (unknown, someone else's,
    another amount, out-of-range values): acknowledged so Stripe stops retrying, logged, counted,
    and it changes nothing."""


class OrderKind(Enum):
    CREDITS = "credits"
    PLAN = "plan"


class OrderAction(Enum):
    CHECKOUT = "checkout"  # a Checkout Session
    INTENT = "intent"  # a PaymentIntent confirmed with a saved payment method
    UPDATE = "update"  # a subscription's price changed
    CANCEL = "cancel"  # a subscription set to cancel at period end
    RESUME = "resume"  # that undone


@dataclass(frozen=True)
class Order:
    """A payment or plan change this system started at Stripe, recorded before Stripe is called:
    the only thing a grant is ever made for. `ref` travels in the Stripe object's metadata."""

    ref: str
    request_key: str
    user_id: str
    customer_id: str
    kind: OrderKind
    action: OrderAction
    pack_id: str | None
    plan_id: str | None
    credits: int
    amount_cents: int
    currency: str
    stripe_id: str | None = None

    def same_request(self, other: Order) -> bool:
        """Whether `other` asks for what this order asked for (a replay of its Idempotency-Key)."""
        if self.kind is OrderKind.PLAN:
            return other.kind is OrderKind.PLAN and self.plan_id == other.plan_id
        return (self.kind, self.action, self.pack_id) == (other.kind, other.action, other.pack_id)


@dataclass(frozen=True)
class StripePayment:
    """A Checkout Session or PaymentIntent as Stripe reports it. `order_ref` is the order named in
    its metadata; `stripe_status` is Stripe's own word for its state."""

    id: str
    action: OrderAction
    mode: str | None
    customer_id: str | None
    amount_cents: int
    currency: str
    status: PaymentStatus
    stripe_status: str
    order_ref: str | None
    url: str = ""
    client_secret: str = ""
    # A Checkout Session's PaymentIntent, once paid.
    payment_intent_id: str | None = None


@dataclass(frozen=True)
class Payment:
    id: int
    user_id: str
    stripe_id: str
    kind: PaymentKind
    status: PaymentStatus
    amount_cents: int
    currency: str
    credits: int
    plan_id: str | None
    created_at: datetime
    refunded_cents: int = 0
    dispute_status: str | None = None
    clawed_credits: int = 0

    @property
    def shown_status(self) -> str:
        """Its status in the history: a payment Stripe took (some) money back from says so."""
        if self.dispute_status in WITHDRAWN_DISPUTES:
            return "disputed"
        if self.amount_cents > 0 and self.refunded_cents >= self.amount_cents:
            return "refunded"
        if self.refunded_cents > 0:
            return "partially_refunded"
        return self.status.value


# Dispute statuses under which Stripe holds the disputed amount (inquiries, `warning_*`, withdraw
# nothing; a won dispute gives the money back).
WITHDRAWN_DISPUTES = frozenset({"needs_response", "under_review", "lost"})


@dataclass(frozen=True)
class MoneyBack:
    """What Stripe returned of a payment, read from its API: refunds, and disputed amounts Stripe
    withdrew (the latest dispute's status, for the history)."""

    amount_cents: int
    refunded_cents: int
    disputed_cents: int
    dispute_status: str | None

    @property
    def returned_cents(self) -> int:
        return min(self.amount_cents, self.refunded_cents + self.disputed_cents)


def clawback_credits(credits: int, money: MoneyBack) -> int:
    """Credits to take back for a purchase of `credits`: in proportion to the money returned,
    rounded up (credits never outlive the money that paid for them)."""
    if money.amount_cents <= 0:
        return 0
    return -(-credits * money.returned_cents // money.amount_cents)


@dataclass(frozen=True)
class TaskPrice:
    type: str
    cost: int
    plans: tuple[str, ...]
    rule: PriceRule | None = None


def task_prices(
    costs: Sequence[tuple[str, int]],
    plans: Sequence[Plan],
    rules: Mapping[str, PriceRule] | None = None,
) -> list[TaskPrice]:
    """Each task type's cost (and price rule) and the plans whose features include the feature it
    needs."""
    return [
        TaskPrice(
            task_type,
            cost,
            tuple(p.id for p in plans if feature_of(task_type) in p.features),
            (rules or {}).get(task_type),
        )
        for task_type, cost in costs
    ]


def format_price(cents: int, currency: str) -> str:
    amount = f"{cents // 100}.{cents % 100:02d}"
    return f"${amount}" if currency.lower() == "usd" else f"{amount} {currency.upper()}"


def choose_pack(packs: Sequence[CreditPack], pack_id: str, credits: int) -> CreditPack:
    """The pack a purchase names, by id or by credits (both must agree when both are given)."""
    valid = "; ".join(p.describe() for p in packs)
    if not pack_id and not credits:
        raise InvalidInput(f"packId or credits is required. Valid packs: {valid}")
    chosen = None
    if pack_id:
        chosen = next((p for p in packs if p.id == pack_id.strip().lower()), None)
    else:
        chosen = next((p for p in packs if p.credits == credits), None)
    if chosen is None or (credits and chosen.credits != credits):
        raise InvalidInput(f"Invalid credit pack. Valid packs: {valid}")
    return chosen


def choose_plan(plans: Sequence[Plan], name: str) -> Plan:
    wanted = name.strip().lower()
    chosen = next((p for p in plans if wanted in (p.id, p.name.lower())), None)
    if chosen is None:
        valid = ", ".join(p.id for p in plans)
        raise InvalidInput(f"Unknown plan: {name or '(none)'}. Valid plans: {valid}")
    return chosen


def validate_payment_method(payment_method_id: str) -> None:
    if len(payment_method_id) > MAX_PAYMENT_METHOD_LENGTH or not payment_method_id.startswith(
        "pm_"
    ):
        raise InvalidInput("paymentMethodId must be a saved Stripe payment method (pm_...)")


def validate_client_key(key: str | None) -> str | None:
    """The caller's Idempotency-Key header, if any."""
    if key is None or key == "":
        return None
    if len(key) > MAX_CLIENT_KEY_LENGTH or not key.isprintable():
        raise InvalidInput(f"Idempotency-Key must be at most {MAX_CLIENT_KEY_LENGTH} characters")
    return key


def stripe_request_key(action: str, user_id: str, client_key: str | None) -> str:
    """Idempotency-Key of a Stripe write made for a user's request: derived from the caller's own
    Idempotency-Key when it sent one (so its retries reach the same Stripe object), otherwise unique
    to this request (so at least our own network retries are safe)."""
    if client_key is None:
        return f"{action}:{uuid.uuid4().hex}"
    digest = hashlib.sha256(f"{user_id}\x00{client_key}".encode()).hexdigest()[:40]
    return f"{action}:{digest}"


def customer_key(user_id: str) -> str:
    """Idempotency-Key of the one Stripe customer creation per user."""
    return f"customer:{user_id}"


def new_order_ref() -> str:
    return f"ord_{uuid.uuid4().hex}"


def purchase_problems(order: Order, payment: StripePayment) -> list[str]:
    """Why `payment` (as Stripe's API reports it) is not the credit purchase `order` started; empty
    when it is: the same Stripe object (or, before it was bound, one naming this order), the same
    customer, and exactly the amount and currency the catalog asked for."""
    problems = []
    if order.kind is not OrderKind.CREDITS or order.action is not payment.action:
        problems.append("not this kind of purchase")
    if order.stripe_id is not None and order.stripe_id != payment.id:
        problems.append("order belongs to another Stripe object")
    if order.stripe_id is None and payment.order_ref != order.ref:
        problems.append("Stripe object does not name this order")
    if payment.action is OrderAction.CHECKOUT and payment.mode != "payment":
        problems.append("checkout session is not a payment")
    if payment.customer_id != order.customer_id:
        problems.append("another customer")
    if (payment.amount_cents, payment.currency) != (order.amount_cents, order.currency):
        problems.append("another amount or currency")
    return problems


def checkout_state(payment: StripePayment) -> str:
    """What a Checkout Session's buyer is told: "open" (pay on its URL), "paid", "expired", or
    "complete" (paid by a method that settles later)."""
    if payment.status is PaymentStatus.SUCCEEDED:
        return "paid"
    if payment.stripe_status in ("open", "expired"):
        return payment.stripe_status
    return "complete"


def checkout_grant_key(session_id: str) -> str:
    return f"stripe:checkout:{session_id}"


def intent_grant_key(intent_id: str) -> str:
    return f"stripe:pi:{intent_id}"
