"""Billing rules, free of gRPC, SQL and network I/O: the catalog (plans and credit packs), which pack
or plan a request names, which plan an account should be on given its Stripe subscriptions, and the
idempotency keys that make every fulfilment happen once."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from services.kit.errors import InvalidInput

FREE_PLAN = "free"
# Subscription statuses under which the paid plan applies. past_due keeps the plan while Stripe
# retries the payment; the plan ends when Stripe cancels (deletes) the subscription.
LIVE_STATUSES = frozenset({"active", "trialing", "past_due"})
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


@dataclass(frozen=True)
class Purchase:
    """A credit purchase as Stripe reports it (a Checkout Session in payment mode, or a PaymentIntent
    we created directly). `grant_key` names the purchase in the credit ledger."""

    stripe_id: str
    grant_key: str
    user_id: str | None
    customer_id: str | None
    credits: int
    pack_id: str | None
    amount_cents: int
    currency: str
    status: PaymentStatus


@dataclass(frozen=True)
class Subscription:
    """A Stripe subscription as Stripe reports it."""

    id: str
    customer_id: str
    user_id: str | None
    status: str
    plan_id: str | None
    price_id: str | None
    item_id: str | None
    cancel_at_period_end: bool
    period_start: datetime | None
    period_end: datetime | None

    @property
    def live(self) -> bool:
        return self.status in LIVE_STATUSES


@dataclass(frozen=True)
class Invoice:
    id: str
    customer_id: str | None
    subscription_id: str | None
    amount_cents: int
    currency: str


@dataclass(frozen=True)
class PlanPlacement:
    """The plan an account should be on, and the billing period it belongs to (None for Free)."""

    plan_id: str
    period_start: datetime | None
    period_end: datetime | None


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


def checkout_grant_key(session_id: str) -> str:
    return f"stripe:checkout:{session_id}"


def intent_grant_key(intent_id: str) -> str:
    return f"stripe:pi:{intent_id}"


def plan_change_key(sequence: int, placement: PlanPlacement) -> str:
    """Ledger key of the n-th plan change driven by Stripe for an account. It names the change, so a
    retry of the same change (after a crash before billing recorded it) is applied once."""
    start = int(placement.period_start.timestamp()) if placement.period_start else 0
    return f"stripe:plan:{sequence}:{placement.plan_id}:{start}"


def desired_placement(
    subscriptions: Sequence[Subscription], plans: Sequence[Plan]
) -> PlanPlacement:
    """The best paid plan among live subscriptions (several can exist briefly, e.g. two checkouts
    paid), with that subscription's billing period; Free when none is live."""
    rank = {p.id: i for i, p in enumerate(plans)}
    live = [s for s in subscriptions if s.live and s.plan_id in rank and s.plan_id != FREE_PLAN]
    if not live:
        return PlanPlacement(FREE_PLAN, None, None)
    best = max(
        live,
        key=lambda s: (rank[s.plan_id or ""], s.period_end.timestamp() if s.period_end else 0),
    )
    assert best.plan_id is not None
    return PlanPlacement(best.plan_id, best.period_start, best.period_end)


def placement_changed(
    applied_plan: str | None, applied_period_start: datetime | None, desired: PlanPlacement
) -> bool:
    """Whether the credit account must be moved: another plan, or a new billing period of a paid
    plan (a renewal, which resets the allowance). An account never placed by Stripe is on Free."""
    current = applied_plan or FREE_PLAN
    if desired.plan_id == FREE_PLAN:
        return current != FREE_PLAN
    return (current, applied_period_start) != (desired.plan_id, desired.period_start)
