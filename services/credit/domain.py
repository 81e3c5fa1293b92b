"""Credit rules, free of gRPC and SQL.

Every credit-adding event creates a grant: a block of credits with a category (plan allowance,
purchased, promotional, compensation), a priority, an effective time and an optional expiry. A
charge spends live grants by priority, then soonest expiry, then oldest (`spending_order`); the
plan allowance is closed by the monthly reset, other grants by their `expires_at`. Unlimited plans
record usage without touching a grant. Every change is a ledger entry (idempotency key unique per
account) whose per-grant changes are its postings; an account's balance columns are sums over its
open grants by category (allowance, purchased, and "bonus" for promotional + compensation).

Money Stripe takes back is clawed back from the payment's grant, then the rest of the balance; what
cannot be taken is `owed` and settled first from any credits that come in later.
"""

from __future__ import annotations

import calendar
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum

from services.kit.errors import (
    DomainError,
    FeatureNotInPlan,
    InsufficientCredits,
    InvalidInput,
    InvalidState,
    NotFound,
)

MAX_KEY_LENGTH = 200
MAX_AMOUNT = 1_000_000
MAX_PRIORITY = 1000
MAX_REASON_LENGTH = 500
MAX_ACTOR_LENGTH = 200
# The furthest an admin may set an expiry: anything later is a typo, not a policy.
MAX_EXPIRY = timedelta(days=3660)
FREE_PLAN = "free"
# Credits given back for a charge whose grant expired or was voided meanwhile come back as a new
# grant of the same category; one that could expire lives this long (the allowance: until the next
# reset, like any allowance).
RETURNED_GRANT_VALIDITY = timedelta(days=30)


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


@dataclass(frozen=True)
class Quote:
    allowed: bool
    cost: int
    available: int
    reason: str = ""
    message: str = ""


@dataclass(frozen=True)
class AdminGrant:
    """A grant support staff asked for, validated."""

    user_id: str
    category: Category
    amount: int
    priority: int
    expires_at: datetime | None
    reason: str
    actor: str


@dataclass(frozen=True)
class ClawbackPlan:
    changes: list[Change] = field(default_factory=list)
    owed_delta: int = 0
    new_grant: NewGrant | None = None


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


_DURATION = re.compile(r"(\d{1,7})([smhdw])")
_ISO_DURATION = re.compile(
    r"p(?:(\d{1,5})w)?(?:(\d{1,5})d)?(?:t(?:(\d{1,6})h)?(?:(\d{1,7})m)?(?:(\d{1,8})s)?)?"
)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_ISO_UNITS = (604800, 86400, 3600, 60, 1)


def parse_duration(raw: str) -> timedelta:
    """`30d`, `12h`, `2w`, `1d12h`, `90m`, `45s`, or ISO 8601 (`P30D`, `PT12H`)."""
    text = raw.strip().lower()
    iso = _ISO_DURATION.fullmatch(text)
    if iso is not None and not text.endswith(("p", "t")):
        seconds = sum(int(g or 0) * unit for g, unit in zip(iso.groups(), _ISO_UNITS, strict=True))
    elif text and _DURATION.sub("", text) == "":
        seconds = sum(int(n) * _UNITS[unit] for n, unit in _DURATION.findall(text))
    else:
        raise InvalidInput("expiresIn must be a duration such as 30d, 12h, 2w or P30D")
    if seconds <= 0:
        raise InvalidInput("expiresIn must be a positive duration")
    return timedelta(seconds=seconds)


def admin_grant(
    *,
    user_id: str,
    amount: int,
    category: str,
    reason: str,
    actor: str,
    now: datetime,
    expires_at: datetime | None = None,
    expires_in: str = "",
    priority: int | None = None,
) -> AdminGrant:
    """Check what support staff asked for: a promotional or compensation grant, with a reason,
    expiring in the future (at most ~10 years ahead) if at all."""
    if not user_id or len(user_id) > 128:
        raise InvalidInput("userId is required")
    validate_amount(amount)
    chosen = parse_category(category or Category.PROMOTIONAL.value, ADMIN_CATEGORIES)
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON_LENGTH:
        raise InvalidInput(f"reason is required (at most {MAX_REASON_LENGTH} characters)")
    if not actor or len(actor) > MAX_ACTOR_LENGTH:
        raise InvalidInput("actor is required")
    if expires_at is not None and expires_in:
        raise InvalidInput("give expiresAt or expiresIn, not both")
    if expires_in:
        expires_at = now + parse_duration(expires_in)
    if expires_at is not None and not now < expires_at <= now + MAX_EXPIRY:
        raise InvalidInput("expiresAt must be in the future (and within 10 years)")
    chosen_priority = DEFAULT_PRIORITY[chosen] if priority is None else priority
    validate_priority(chosen_priority)
    return AdminGrant(user_id, chosen, amount, chosen_priority, expires_at, reason, actor)


def check_reason(reason: str) -> str:
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON_LENGTH:
        raise InvalidInput(f"reason is required (at most {MAX_REASON_LENGTH} characters)")
    return reason


# --- spending ---


def spending_order(grants: Iterable[Grant], now: datetime) -> list[Grant]:
    """Live grants with credits left, in the order a charge spends them. This is the Python
    statement of the rule; the charge itself applies it in SQL (store._CHARGE), and a test holds
    the two to each other on random grant sets."""
    return sorted(
        (g for g in grants if g.is_live(now) and g.remaining > 0), key=lambda g: g.order_key()
    )


def available(grants: Iterable[Grant], now: datetime) -> int:
    return sum(g.remaining for g in grants if g.is_live(now))


def consume(grants: Iterable[Grant], amount: int, now: datetime) -> list[Change]:
    """Up to `amount` credits from the live grants in spending order (all of it if they hold
    enough): the changes, each negative."""
    changes = []
    left = amount
    for grant in spending_order(grants, now):
        if left == 0:
            break
        take = min(grant.remaining, left)
        changes.append(Change(grant, -take))
        left -= take
    return changes


def charge_takes(grants: Iterable[Grant], amount: int, now: datetime) -> list[Change] | None:
    """What a charge of `amount` takes from each grant, or None when the live grants do not hold
    enough (the charge is then refused whole)."""
    grants = list(grants)
    if available(grants, now) < amount:
        return None
    return consume(grants, amount, now)


def refusal(
    account: Account | None, available_credits: int, amount: int, feature: str
) -> DomainError | None:
    """Why a charge of `amount` for `feature` would be refused, or None when it would be taken."""
    if account is None:
        return NotFound("Credit account not found")
    if feature and feature not in account.terms.features:
        return FeatureNotInPlan(
            f"{feature} is not included in the {account.terms.plan_name} plan",
            feature=feature,
            plan=account.terms.plan_name,
        )
    if account.terms.is_unlimited or available_credits >= amount:
        return None
    return InsufficientCredits(required=amount, available=available_credits)


def charge_refusal(account: Account | None, amount: int, feature: str) -> DomainError:
    """Why a charge that the ledger refused was refused."""
    found = refusal(account, account.current_credits if account else 0, amount, feature)
    if found is None:
        assert account is not None
        return InsufficientCredits(required=amount, available=account.current_credits)
    return found


def quote(account: Account, available_credits: int, amount: int, feature: str) -> Quote:
    """Whether a charge of `amount` for `feature` would be taken now (the charge's own rule)."""
    refused = refusal(account, available_credits, amount, feature)
    if refused is None:
        return Quote(True, amount, available_credits)
    return Quote(False, amount, available_credits, refused.kind.value.lower(), refused.message)


# --- refunds ---


def refund_split(
    charged_allowance: int,
    charged_purchased: int,
    refunded_allowance: int,
    refunded_purchased: int,
    amount: int,
) -> tuple[int, int]:
    """Credits a refund of a charge made before grants existed gives back to (allowance,
    purchased): purchased first, never more than is left of the charge. `amount` 0 means
    everything that is left."""
    left_purchased = charged_purchased - refunded_purchased
    left_allowance = charged_allowance - refunded_allowance
    left = left_purchased + left_allowance
    wanted = left if amount == 0 else amount
    if wanted > left:
        raise InvalidInput(f"refund exceeds what is left of the charge ({left})")
    back_purchased = min(wanted, left_purchased)
    return wanted - back_purchased, back_purchased


def refund_returns(left: Sequence[tuple[Grant, int]], amount: int) -> list[tuple[Grant, int]]:
    """What a refund gives back to each grant a charge took from. `left` is, per grant, what the
    charge took minus what earlier refunds returned. Credits go back last-spent first (the grants
    the charge would have kept longest), never more than is left; `amount` 0 means all of it."""
    total = sum(n for _, n in left)
    if total <= 0:
        raise InvalidState("Charge already refunded")
    wanted = total if amount == 0 else amount
    if wanted > total:
        raise InvalidInput(f"refund exceeds what is left of the charge ({total})")
    returns = []
    for grant, n in sorted(left, key=lambda item: item[0].order_key(), reverse=True):
        if wanted == 0:
            break
        back = min(n, wanted)
        if back > 0:
            returns.append((grant, back))
            wanted -= back
    return returns


def returned_grant(
    source: Grant | None, category: Category, amount: int, now: datetime
) -> NewGrant:
    """The grant that receives refunded credits whose own grant is closed (expired, voided, reset)
    or unknown (a charge made before grants existed): same category and priority; the allowance is
    closed by the next reset like any allowance, other credits that could expire get
    RETURNED_GRANT_VALIDITY, credits that could not expire still cannot."""
    priority = source.priority if source is not None else DEFAULT_PRIORITY[category]
    could_expire = source is not None and source.expires_at is not None
    expires = now + RETURNED_GRANT_VALIDITY if could_expire else None
    if category is Category.ALLOWANCE:
        expires = None
    return NewGrant(category, amount, priority, expires)


def settle_owed(owed: int, incoming: int) -> int:
    """Credits coming in settle what is owed first: how many of `incoming` go to the debt."""
    return min(max(owed, 0), incoming)


# --- clawback ---


def clawback_target(credits: int, paid_cents: int, returned_cents: int) -> int:
    """Credits to take back when `returned_cents` of a `paid_cents` payment for `credits` went back
    to the payer: proportional, rounded up (credits never outlive the money that paid for them)."""
    if paid_cents <= 0:
        return 0
    returned = min(max(returned_cents, 0), paid_cents)
    return -(-credits * returned // paid_cents)


def clawback_plan(
    grant: Grant, others: Sequence[Grant], owed: int, target: int, now: datetime
) -> ClawbackPlan:
    """Bring the credits taken back for `grant`'s payment to `target` (at most the grant). More:
    from the grant itself, then the rest of the live balance in spending order, and what is still
    missing is owed. Less (a dispute won): the credits are given back, settling any debt first, to
    the grant (or, when it is closed, to a new grant of its kind)."""
    target = min(max(target, 0), grant.amount)
    delta = target - grant.clawed
    if delta > 0:
        changes = []
        # An open grant may have lapsed without its expiry entry yet: its credits still count.
        own = min(grant.remaining, delta) if grant.is_open else 0
        if own:
            changes.append(Change(grant, -own))
        rest = [g for g in others if g.id != grant.id]
        changes += consume(rest, delta - own, now)
        taken = -sum(c.delta for c in changes)
        return ClawbackPlan(changes, owed_delta=delta - taken)
    if delta < 0:
        back = -delta
        settled = settle_owed(owed, back)
        back -= settled
        if back == 0:
            return ClawbackPlan([], owed_delta=-settled)
        if grant.is_open:
            return ClawbackPlan([Change(grant, back)], owed_delta=-settled)
        return ClawbackPlan(
            [], owed_delta=-settled, new_grant=returned_grant(grant, grant.category, back, now)
        )
    return ClawbackPlan()


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
