"""How credits move among an account's grants, free of gRPC and SQL: which grants a charge spends
(and whether it is taken at all), where a refund gives credits back, what a clawback takes back,
and debt settled first from whatever comes in. Types: `domain`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from services.credit.domain import (
    DEFAULT_PRIORITY,
    Account,
    Category,
    Change,
    Grant,
    NewGrant,
)
from services.kit.errors import (
    DomainError,
    FeatureNotInPlan,
    InsufficientCredits,
    InvalidInput,
    InvalidState,
    NotFound,
)

# Credits given back for a charge whose grant expired or was voided meanwhile come back as a new
# grant of the same category; one that could expire lives this long (the allowance: until the next
# reset, like any allowance).
RETURNED_GRANT_VALIDITY = timedelta(days=30)


@dataclass(frozen=True)
class Quote:
    allowed: bool
    cost: int
    available: int
    reason: str = ""
    message: str = ""


@dataclass(frozen=True)
class ClawbackPlan:
    changes: list[Change] = field(default_factory=list)
    owed_delta: int = 0
    new_grant: NewGrant | None = None


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
