"""Which plan a user's credit account is on, from their Stripe subscriptions: free of gRPC, SQL and
network I/O. Which live subscription is kept (the others are cancelled), the plan and billing
period it places on the account (paid or not), whether the account must be moved, the ledger key
that makes each move happen once, and a subscription invoice's status in the payment history."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from services.billing.domain import FREE_PLAN, PaymentStatus, Plan

# Subscription statuses under which the paid plan applies. past_due keeps the plan while Stripe
# retries the payment; the plan ends when Stripe cancels (deletes) the subscription.
LIVE_STATUSES = frozenset({"active", "trialing", "past_due"})
# Statuses under which the current period is paid for (with its latest invoice paid).
PAID_STATUSES = frozenset({"active", "trialing"})


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
