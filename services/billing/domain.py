"""Billing rules, free of gRPC, SQL and network I/O: the catalog (plans and credit packs), which
pack or plan a request names, whether what Stripe reports matches the order we started, which of a
user's subscriptions is kept and which plan (paid or not) the account should be on, and the
idempotency keys that make every fulfilment happen once."""

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
# Subscription statuses under which the paid plan applies. past_due keeps the plan while Stripe
# retries the payment; the plan ends when Stripe cancels (deletes) the subscription.
LIVE_STATUSES = frozenset({"active", "trialing", "past_due"})
# Statuses under which the current period is paid for (with its latest invoice paid).
PAID_STATUSES = frozenset({"active", "trialing"})
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
class Subscription:
    """A Stripe subscription as Stripe reports it. `invoice_paid`: its latest invoice is paid (read
    from the expanded invoice; False when Stripe did not say)."""

    id: str
    customer_id: str
    status: str
    plan_id: str | None
    price_id: str | None
    item_id: str | None
    cancel_at_period_end: bool
    period_start: datetime | None
    period_end: datetime | None
    created: datetime | None = None
    price_cents: int | None = None
    currency: str | None = None
    latest_invoice_id: str | None = None
    invoice_paid: bool = False

    @property
    def live(self) -> bool:
        return self.status in LIVE_STATUSES

    @property
    def paid(self) -> bool:
        """Whether its current period is paid for: never while past_due or before the period's
        invoice is paid."""
        return self.status in PAID_STATUSES and self.invoice_paid


@dataclass(frozen=True)
class Invoice:
    id: str
    customer_id: str | None
    subscription_id: str | None
    amount_cents: int
    currency: str
    status: str | None = None
    payment_intent_id: str | None = None

    def payment_status(self, *, failed: bool) -> PaymentStatus:
        """Its status in the history; `failed`: Stripe reported a failed attempt."""
        if self.status == "paid":
            return PaymentStatus.SUCCEEDED
        if self.status == "void":
            return PaymentStatus.CANCELED
        if self.status == "uncollectible" or failed:
            return PaymentStatus.FAILED
        return PaymentStatus.PENDING


@dataclass(frozen=True)
class PlanPlacement:
    """The plan an account should be on, the billing period it belongs to (None for Free), whether
    that period is paid for, and the subscription it comes from."""

    plan_id: str
    period_start: datetime | None
    period_end: datetime | None
    paid: bool = True
    subscription_id: str | None = None


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


def plan_change_key(sequence: int, placement: PlanPlacement) -> str:
    """Ledger key of the n-th plan change driven by Stripe for an account. It names the change, so a
    retry of the same change (after a crash before billing recorded it) is applied once."""
    start = int(placement.period_start.timestamp()) if placement.period_start else 0
    unpaid = "" if placement.paid else ":unpaid"
    return f"stripe:plan:{sequence}:{placement.plan_id}:{start}{unpaid}"


def plan_terms(plan: Plan, paid: bool) -> tuple[int, bool]:
    """(monthly allowance, unlimited) for an account on `plan`. A period not paid for has no
    allowance (and is not unlimited); the plan's features stay until Stripe ends it."""
    if not paid:
        return 0, False
    return plan.monthly_credits, plan.is_unlimited


def plan_of(sub: Subscription, plans: Sequence[Plan]) -> Plan | None:
    """The paid plan a live subscription stands for, when its price is that plan's catalog price;
    None otherwise (nothing is placed for a subscription at another price)."""
    plan = next((p for p in plans if p.id == sub.plan_id and p.id != FREE_PLAN), None)
    if plan is None or not sub.live:
        return None
    if (sub.price_cents, sub.currency) != (plan.price_cents, plan.currency):
        return None
    return plan


def keep_one(
    subscriptions: Sequence[Subscription], plans: Sequence[Plan], placed_id: str | None
) -> tuple[Subscription | None, list[Subscription]]:
    """A user has at most one live subscription: (the one kept, the duplicates to cancel). The one
    already placed on the account is kept; otherwise the oldest (the same choice whoever decides,
    since the order is total)."""
    live = [s for s in subscriptions if plan_of(s, plans) is not None]
    if not live:
        return None, []

    def age(s: Subscription) -> tuple[bool, float, str]:
        return (s.id != placed_id, s.created.timestamp() if s.created else 0.0, s.id)

    ordered = sorted(live, key=age)
    return ordered[0], ordered[1:]


def placement_for(kept: Subscription | None, plans: Sequence[Plan]) -> PlanPlacement:
    """Where the account belongs: the kept subscription's plan and billing period (paid or not), or
    Free."""
    plan = plan_of(kept, plans) if kept is not None else None
    if kept is None or plan is None:
        return PlanPlacement(FREE_PLAN, None, None)
    return PlanPlacement(plan.id, kept.period_start, kept.period_end, kept.paid, kept.id)


def placement_changed(
    applied_plan: str | None,
    applied_period_start: datetime | None,
    desired: PlanPlacement,
    applied_paid: bool = True,
) -> bool:
    """Whether the credit account must be moved: another plan, a new billing period (a renewal,
    which resets the allowance; an unpaid one to none), or the placed period now paid. A paid
    period is never taken back. An account never placed by Stripe is on Free."""
    current = applied_plan or FREE_PLAN
    if desired.plan_id == FREE_PLAN:
        return current != FREE_PLAN
    if (current, applied_period_start) != (desired.plan_id, desired.period_start):
        return True
    return desired.paid and not applied_paid
