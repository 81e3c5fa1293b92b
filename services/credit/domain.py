"""Credit types and the rules every use case shares, free of gRPC and SQL.

Every credit-adding event creates a grant: a block of credits with a category (plan allowance,
purchased, promotional, compensation), a priority, an effective time and an optional expiry. A
charge spends live grants by priority, then soonest expiry, then oldest; the plan allowance is
closed by the monthly reset, other grants by their `expires_at`. Unlimited plans record usage
without touching a grant. Every change is a ledger entry (idempotency key unique per account) whose
per-grant changes are its postings; an account's balance columns are sums over its open grants by
category (allowance, purchased, and "bonus" for promotional + compensation).

Money Stripe takes back is clawed back from the payment's grant, then the rest of the balance; what
cannot be taken is `owed` and settled first from any credits that come in later.

The rules that move credits among an account's grants (spending order, refunds, clawbacks) are in
`grant_rules`; what support staff may ask for is in `admin_rules`.
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from services.kit.errors import InvalidInput

MAX_KEY_LENGTH = 200
MAX_AMOUNT = 1_000_000
MAX_PRIORITY = 1000
FREE_PLAN = "free"


class EntryKind(Enum):
    GRANT = "grant"
    CHARGE = "charge"
    REFUND = "refund"
    EXPIRY = "expiry"
    VOID = "void"
    # Credits taken back because Stripe returned the money (refund, dispute), and given again
    # (dispute won).
    CLAWBACK = "clawback"
    REINSTATE = "reinstate"


class Bucket(Enum):
    """The two categories the internal Grant RPC took before categories existed."""

    ALLOWANCE = "allowance"
    PURCHASED = "purchased"


class Category(Enum):
    ALLOWANCE = "allowance"
    PURCHASED = "purchased"
    PROMOTIONAL = "promotional"
    COMPENSATION = "compensation"

    @property
    def column(self) -> str:
        """The account balance column this category sums into."""
        if self is Category.ALLOWANCE:
            return "allowance"
        if self is Category.PURCHASED:
            return "purchased"
        return "bonus"


# Lower is spent first. Promotions are meant to be used up, the allowance ends with the period,
# compensation is the user's to keep, and paid credits go last.
DEFAULT_PRIORITY: dict[Category, int] = {
    Category.PROMOTIONAL: 10,
    Category.ALLOWANCE: 20,
    Category.COMPENSATION: 30,
    Category.PURCHASED: 40,
}
# What support staff may grant or void; purchases come from Stripe, the allowance from the plan.
ADMIN_CATEGORIES = frozenset({Category.PROMOTIONAL, Category.COMPENSATION})


class CloseReason(Enum):
    EXPIRED = "expired"
    VOIDED = "voided"
    RESET = "reset"  # the allowance, when a new period starts


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
    # Promotional and compensation credits.
    bonus_balance: int = 0
    # Credits taken back by Stripe that the balance could not cover.
    owed: int = 0

    @property
    def current_credits(self) -> int:
        return self.allowance_balance + self.purchased_balance + self.bonus_balance


@dataclass(frozen=True)
class Grant:
    id: int
    user_id: str
    category: Category
    amount: int
    remaining: int
    priority: int
    effective_at: datetime
    expires_at: datetime | None
    source_key: str
    reference: str = ""
    closed_at: datetime | None = None
    closed_reason: CloseReason | None = None
    # Credits taken back for this grant's payment (refunds, disputes).
    clawed: int = 0
    created_at: datetime | None = None

    @property
    def is_open(self) -> bool:
        return self.closed_at is None

    def is_live(self, now: datetime) -> bool:
        """Spendable now: not closed by an entry, in effect, and not past its expiry (the expiry
        entry may lag behind by up to one scheduler run; a lapsed grant is never spent)."""
        return (
            self.closed_at is None
            and self.effective_at <= now
            and (self.expires_at is None or self.expires_at > now)
        )

    def order_key(self) -> tuple[int, bool, datetime, datetime, int]:
        """The spending order: priority, then soonest expiry (never-expiring last), then oldest
        (SQL: ORDER BY priority, expires_at NULLS LAST, effective_at, id)."""
        never = self.expires_at is None
        return (
            self.priority,
            never,
            self.expires_at or self.effective_at,
            self.effective_at,
            self.id,
        )


@dataclass(frozen=True)
class GrantDelta:
    """One grant's change in one entry (a posting)."""

    grant_id: int
    category: Category
    delta: int


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
    bonus_delta: int = 0
    owed_delta: int = 0
    actor: str = ""
    reason: str = ""
    grants: tuple[GrantDelta, ...] = ()


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


@dataclass(frozen=True)
class Change:
    """What an entry does to one grant: `delta` credits, and whether it closes the grant."""

    grant: Grant
    delta: int
    close: CloseReason | None = None


@dataclass(frozen=True)
class NewGrant:
    """A grant about to be created."""

    category: Category
    amount: int
    priority: int
    expires_at: datetime | None
    reference: str = ""


def column_deltas(changes: Iterable[Change]) -> dict[str, int]:
    """What an entry's changes do to each of the account's balance columns (allowance, purchased,
    bonus): the entry's deltas, whose sum is its amount."""
    per_column = {"allowance": 0, "purchased": 0, "bonus": 0}
    for change in changes:
        per_column[change.grant.category.column] += change.delta
    return per_column


# --- validation ---


def validate_key(key: str) -> None:
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidInput(f"idempotencyKey is required (at most {MAX_KEY_LENGTH} characters)")


def validate_amount(amount: int, *, allow_zero: bool = False) -> None:
    low = 0 if allow_zero else 1
    if not low <= amount <= MAX_AMOUNT:
        raise InvalidInput(f"amount must be between {low} and {MAX_AMOUNT}")


def validate_priority(priority: int) -> None:
    if not 0 <= priority <= MAX_PRIORITY:
        raise InvalidInput(f"priority must be between 0 and {MAX_PRIORITY}")


def parse_category(raw: str, allowed: Iterable[Category] = tuple(Category)) -> Category:
    allowed = tuple(allowed)
    try:
        category = Category(raw.strip().lower())
    except ValueError:
        category = None
    if category not in allowed:
        valid = ", ".join(c.value for c in allowed)
        raise InvalidInput(f"category must be one of: {valid}")
    assert category is not None
    return category


def ensure_same_request(existing: Entry, kind: EntryKind, usage: int | None = None) -> None:
    """A reused idempotency key must name the same operation (AIP-155)."""
    if existing.kind is not kind or (usage is not None and existing.usage != usage):
        raise InvalidInput("idempotencyKey was already used for a different request")


# --- dates ---


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


# --- reservations: hold the most a piece of work can cost, settle what it measured ---


@dataclass(frozen=True)
class Settlement:
    """How a hold of `held` ends for work that measured `cost`: `charged` is kept (never above the
    hold), `returned` goes back to the grants it came from, `uncharged` is what the work came to
    above the hold (recorded, never taken)."""

    charged: int
    returned: int
    uncharged: int


def settlement(held: int, cost: int) -> Settlement:
    if held < 0 or cost < 0:
        raise InvalidInput("cost must not be negative")
    charged = min(held, cost)
    return Settlement(charged=charged, returned=held - charged, uncharged=cost - charged)


# --- verification: what makes an account's balances disagree with its ledger ---


@dataclass(frozen=True)
class BucketSums:
    allowance: int
    purchased: int
    bonus: int
    owed: int


def ledger_differences(
    user_id: str, columns: BucketSums, *, entries: BucketSums, grants: BucketSums
) -> list[LedgerDifference]:
    """An account's balance columns against the sums of its entries and of its open grants (the
    grants carry no debt: `grants.owed` is ignored). No bucket may be negative."""
    found = []
    if min(columns.allowance, columns.purchased, columns.bonus) < 0:
        total = columns.allowance + columns.purchased + columns.bonus
        posted = entries.allowance + entries.purchased + entries.bonus
        found.append(LedgerDifference(user_id, "negative bucket", total, posted))
    for name in ("allowance", "purchased", "bonus"):
        column = getattr(columns, name)
        if column != getattr(entries, name):
            found.append(LedgerDifference(user_id, name, column, getattr(entries, name)))
        if column != getattr(grants, name):
            found.append(LedgerDifference(user_id, f"{name} grants", column, getattr(grants, name)))
    if columns.owed != entries.owed:
        found.append(LedgerDifference(user_id, "owed", columns.owed, entries.owed))
    return found
