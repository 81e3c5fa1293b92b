"""Credit rules, free of gRPC and SQL.

Two buckets: the plan allowance (refilled each period; what is left expires) and purchased credits
(never expire). Charges spend allowance first. Unlimited plans record usage without touching a
balance. Every change is a ledger entry whose idempotency key is unique per account.
"""

from __future__ import annotations

import calendar
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from services.kit.errors import (
    DomainError,
    FeatureNotInPlan,
    InsufficientCredits,
    InvalidInput,
    NotFound,
)

MAX_KEY_LENGTH = 200
MAX_AMOUNT = 1_000_000
FREE_PLAN = "free"


class EntryKind(Enum):
    GRANT = "grant"
    CHARGE = "charge"
    REFUND = "refund"
    EXPIRY = "expiry"


class Bucket(Enum):
    ALLOWANCE = "allowance"
    PURCHASED = "purchased"


@dataclass(frozen=True)
class PlanTerms:
    plan_name: str
    monthly_allowance: int
    is_unlimited: bool
    features: tuple[str, ...]

    def validate(self) -> None:
        if not self.plan_name:
            raise InvalidInput("planName is required")
        if not 0 <= self.monthly_allowance <= MAX_AMOUNT:
            raise InvalidInput("monthlyAllowance out of range")


@dataclass(frozen=True)
class Account:
    user_id: str
    terms: PlanTerms
    allowance_balance: int
    purchased_balance: int
    used_this_period: int
    period_started_at: datetime
    credit_reset_at: datetime

    @property
    def current_credits(self) -> int:
        return self.allowance_balance + self.purchased_balance


@dataclass(frozen=True)
class Entry:
    id: int
    user_id: str
    kind: EntryKind
    idempotency_key: str
    amount: int
    allowance_delta: int
    purchased_delta: int
    usage: int
    reference: str
    description: str
    balance_after: int
    created_at: datetime


@dataclass(frozen=True)
class Posting:
    """Result of a ledger operation: the entry, the balance after it, and whether this call made it
    (False: the idempotency key was used before and the first result is returned)."""

    entry: Entry
    remaining_credits: int
    applied: bool


@dataclass(frozen=True)
class LedgerDifference:
    user_id: str
    problem: str
    balance: int
    ledger_sum: int


def validate_key(key: str) -> None:
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidInput(f"idempotencyKey is required (at most {MAX_KEY_LENGTH} characters)")


def validate_amount(amount: int, *, allow_zero: bool = False) -> None:
    low = 0 if allow_zero else 1
    if not low <= amount <= MAX_AMOUNT:
        raise InvalidInput(f"amount must be between {low} and {MAX_AMOUNT}")


def ensure_same_request(existing: Entry, kind: EntryKind, usage: int | None = None) -> None:
    """A reused idempotency key must name the same operation (AIP-155)."""
    if existing.kind is not kind or (usage is not None and existing.usage != usage):
        raise InvalidInput("idempotencyKey was already used for a different request")


def charge_refusal(account: Account | None, amount: int, feature: str) -> DomainError:
    """Why a charge that the ledger refused was refused."""
    if account is None:
        return NotFound("Credit account not found")
    if feature and feature not in account.terms.features:
        return FeatureNotInPlan(
            f"{feature} is not included in the {account.terms.plan_name} plan",
            feature=feature,
            plan=account.terms.plan_name,
        )
    return InsufficientCredits(required=amount, available=account.current_credits)


def refund_split(
    charged_allowance: int,
    charged_purchased: int,
    refunded_allowance: int,
    refunded_purchased: int,
    amount: int,
) -> tuple[int, int]:
    """Credits a refund gives back to (allowance, purchased).

    Charges and refunds are stored as positive magnitudes here. A refund returns credits to the
    buckets they came from, purchased first (those never expire), and never more than is left of
    the charge. `amount` 0 means everything that is left.
    """
    left_purchased = charged_purchased - refunded_purchased
    left_allowance = charged_allowance - refunded_allowance
    left = left_purchased + left_allowance
    wanted = left if amount == 0 else amount
    if wanted > left:
        raise InvalidInput(f"refund exceeds what is left of the charge ({left})")
    back_purchased = min(wanted, left_purchased)
    return wanted - back_purchased, back_purchased


def add_months(anchor: datetime, months: int) -> datetime:
    """`anchor` plus calendar months, clamped to the month's last day (Jan 31 + 1 = Feb 28/29)."""
    index = anchor.month - 1 + months
    year, month = anchor.year + index // 12, index % 12 + 1
    day = min(anchor.day, calendar.monthrange(year, month)[1])
    return anchor.replace(year=year, month=month, day=day)


def period_containing(anchor: datetime, moment: datetime) -> tuple[datetime, datetime]:
    """The monthly period (start, end) of an anchor's schedule that contains `moment`."""
    months = (moment.year - anchor.year) * 12 + (moment.month - anchor.month)
    start = add_months(anchor, months)
    if start > moment:
        months -= 1
        start = add_months(anchor, months)
    end = add_months(anchor, months + 1)
    if end <= moment:  # only on clamped month ends
        start, end = end, add_months(anchor, months + 2)
    return start, end


def days_until(moment: datetime, now: datetime) -> int:
    remaining = (moment - now) / timedelta(days=1)
    return max(0, math.ceil(remaining))
