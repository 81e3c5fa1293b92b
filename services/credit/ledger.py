"""Service layer of the credit service: each use case's transaction.

A charge is one autocommit statement (store.charge). Everything else that moves credits runs in a
short transaction that locks the account row first, reads what it needs (the account's open
grants, the entry a key names), decides with the rules in `domain`, and records one entry through
store.post; the unique (user_id, idempotency_key) constraint still backs every key up. The monthly
reset and grant expiry are set-based batches (store.reset_due, store.expire_due).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from services.credit import store
from services.credit.domain import (
    ADMIN_CATEGORIES,
    DEFAULT_PRIORITY,
    Account,
    AdminGrant,
    Category,
    Change,
    CloseReason,
    Entry,
    EntryKind,
    Grant,
    LedgerDifference,
    NewGrant,
    PlanTerms,
    Posting,
    Quote,
    add_months,
    check_reason,
    clawback_plan,
    ensure_same_request,
    quote,
    refund_returns,
    refund_split,
    returned_grant,
    settle_owed,
)
from services.kit.db import Database
from services.kit.errors import InvalidInput, InvalidState, NotFound

SHOW_ENTRIES = 50


@dataclass(frozen=True)
class Clawback:
    entry: Entry | None
    applied: bool
    clawed: int
    owed: int
    remaining_credits: int


@dataclass(frozen=True)
class AccountView:
    """An account as its owner or support sees it: balances of the live grants, the grants."""

    account: Account
    grants: list[Grant]
    entries: list[Entry]


def live_view(account: Account, grants: Sequence[Grant], now: datetime) -> Account:
    """The account's balances as what its live grants hold now: a grant past its expiry counts for
    nothing even before the expiry job writes its entry."""
    sums = {"allowance": 0, "purchased": 0, "bonus": 0}
    for grant in grants:
        if grant.is_live(now):
            sums[grant.category.column] += grant.remaining
    return replace(
        account,
        allowance_balance=sums["allowance"],
        purchased_balance=sums["purchased"],
        bonus_balance=sums["bonus"],
    )


class Ledger:
    def __init__(self, db: Database) -> None:
        self._db = db

    # --- charges and refunds ---

    async def charge(
        self, *, user_id: str, amount: int, key: str, reference: str, description: str, feature: str
    ) -> Posting:
        async with self._db.autocommit() as conn:
            return await store.charge(
                conn,
                user_id=user_id,
                amount=amount,
                key=key,
                reference=reference,
                description=description,
                feature=feature,
            )

    async def refund(
        self, *, user_id: str, charge_key: str, amount: int, key: str, description: str
    ) -> Posting:
        """Give back (part of) a charge, to the grants it came from, last-spent first; never more
        than is left of it. The account lock comes first, so what earlier refunds gave back is
        current: two refunds of one charge can never both take what is left."""
        now = datetime.now(UTC)
        async with self._db.transaction() as conn:
            account = await _locked(conn, user_id)
            existing = await store.find_entry(conn, user_id, key)
            if existing is not None:
                ensure_same_request(existing, EntryKind.REFUND)
                return Posting(existing, account.current_credits, applied=False)
            charged = await store.find_entry(conn, user_id, charge_key)
            if charged is None or charged.kind is not EntryKind.CHARGE:
                raise NotFound("Charge not found")
            refunded_a, refunded_p, refunded_usage = await store.refunded_of(conn, charged.id)
            left_usage = charged.usage - refunded_usage
            if left_usage <= 0:
                raise InvalidState("Charge already refunded")
            # A charge that took no credits (an unlimited plan's) gives back usage only; one that
            # took credits gives them back even if the plan became unlimited since.
            if charged.amount == 0:
                back_usage = left_usage if amount == 0 else min(amount, left_usage)
                entry = await store.post(
                    conn,
                    user_id=user_id,
                    kind=EntryKind.REFUND,
                    key=key,
                    changes=[],
                    usage=-back_usage,
                    used_delta=-back_usage,
                    reference=charged.reference,
                    description=description,
                    refund_of=charged.id,
                )
                return Posting(entry, entry.balance_after, applied=True)
            sources = await self._refund_sources(conn, charged, amount, (refunded_a, refunded_p))
            changes: list[Change] = []
            shares: list[tuple[int | None, Category, int]] = []
            for source, category, back in sources:
                target = source
                if source is None or not source.is_open:
                    target = await store.create_grant(
                        conn,
                        user_id,
                        returned_grant(source, category, back, now),
                        source_key=f"{key}:{source.id if source else category.value}",
                    )
                assert target is not None
                changes.append(Change(target, back))
                shares.append((source.id if source else None, category, back))
            total = sum(c.delta for c in changes)
            settled = settle_owed(account.owed, total)
            entry = await store.post(
                conn,
                user_id=user_id,
                kind=EntryKind.REFUND,
                key=key,
                changes=_less(changes, settled),
                owed_delta=-settled,
                usage=-total,
                used_delta=-total,
                reference=charged.reference,
                description=description,
                refund_of=charged.id,
            )
            await store.record_refund_shares(conn, charged.id, entry.id, shares)
        return Posting(entry, entry.balance_after, applied=True)

    @staticmethod
    async def _refund_sources(
        conn: AsyncConnection, charged: Entry, amount: int, refunded: tuple[int, int]
    ) -> list[tuple[Grant | None, Category, int]]:
        """(source grant, its category, credits back) for a refund of `amount` (0: all that is
        left). A charge made before grants existed has no grants: its buckets stand in."""
        if not charged.grants:
            back_a, back_p = refund_split(
                -charged.allowance_delta, -charged.purchased_delta, *refunded, amount
            )
            parts = ((Category.PURCHASED, back_p), (Category.ALLOWANCE, back_a))
            return [(None, category, n) for category, n in parts if n > 0]
        left = await store.left_of_charge(conn, charged.id)
        grants = await store.grants_by_id(conn, list(left))
        returns = refund_returns([(grants[g], n) for g, n in left.items()], amount)
        return [(grant, grant.category, n) for grant, n in returns]

    # --- grants ---

    async def grant(
        self,
        *,
        user_id: str,
        amount: int,
        category: Category,
        key: str,
        reference: str = "",
        description: str = "",
        expires_at: datetime | None = None,
        priority: int | None = None,
    ) -> Posting:
        async with self._db.transaction() as conn:
            account = await _locked(conn, user_id)
            existing = await store.find_entry(conn, user_id, key)
            if existing is not None:
                ensure_same_request(existing, EntryKind.GRANT)
                return Posting(existing, account.current_credits, applied=False)
            new = NewGrant(
                category,
                amount,
                DEFAULT_PRIORITY[category] if priority is None else priority,
                expires_at,
                reference,
            )
            entry = await _add_grant(
                conn, account, new, key=key, description=description or _describe(new)
            )
        return Posting(entry, entry.balance_after, applied=True)

    async def admin_grant(self, request: AdminGrant, client_key: str) -> Posting:
        """Support's grant, recorded with its actor and reason; a repeated key returns the first
        one (and is refused for another request)."""
        key = f"admin:{client_key}" if client_key else f"admin:{uuid.uuid4().hex}"
        async with self._db.transaction() as conn:
            account = await _locked(conn, request.user_id)
            existing = await store.find_entry(conn, request.user_id, key)
            if existing is not None:
                ensure_same_request(existing, EntryKind.GRANT)
                first = await store.grant_by_key(conn, request.user_id, key)
                if first is None or (first.category, first.amount) != (
                    request.category,
                    request.amount,
                ):
                    raise InvalidInput("idempotencyKey was already used for a different request")
                return Posting(existing, account.current_credits, applied=False)
            new = NewGrant(request.category, request.amount, request.priority, request.expires_at)
            entry = await _add_grant(
                conn,
                account,
                new,
                key=key,
                description=_describe(new),
                actor=request.actor,
                reason=request.reason,
            )
        return Posting(entry, entry.balance_after, applied=True)

    async def void(self, *, grant_id: int, reason: str, actor: str, client_key: str) -> Posting:
        """Support takes what is left of a promotional or compensation grant back; once per grant
        (a repeat returns the first void)."""
        reason = check_reason(reason)
        key = f"admin:{client_key}" if client_key else f"void:{grant_id}"
        async with self._db.transaction() as conn:
            found = await store.grant_by_id(conn, grant_id)
            if found is None:
                raise NotFound("Grant not found")
            account = await _locked(conn, found.user_id)
            existing = await store.find_entry(conn, found.user_id, key)
            if existing is not None:
                ensure_same_request(existing, EntryKind.VOID)
                return Posting(existing, account.current_credits, applied=False)
            grant = await store.grant_by_id(conn, grant_id)
            assert grant is not None
            if grant.category not in ADMIN_CATEGORIES:
                raise InvalidInput("Only promotional and compensation grants can be voided")
            if not grant.is_open:
                raise InvalidState(f"Grant is already closed ({_closed(grant)})")
            entry = await store.post(
                conn,
                user_id=grant.user_id,
                kind=EntryKind.VOID,
                key=key,
                changes=[Change(grant, -grant.remaining, CloseReason.VOIDED)],
                description=f"{grant.category.value.capitalize()} credits voided",
                actor=actor,
                reason=reason,
            )
        return Posting(entry, entry.balance_after, applied=True)

    # --- Stripe took money back ---

    async def clawback(
        self, *, user_id: str, grant_key: str, target: int, reference: str, description: str
    ) -> Clawback:
        """Bring the credits taken back for the purchase granted under `grant_key` to `target`.
        State, not events: a repeat, a redelivery or an out-of-order report of the same refund
        or dispute finds the target reached and changes nothing."""
        now = datetime.now(UTC)
        async with self._db.transaction() as conn:
            account = await _locked(conn, user_id)
            grant = await store.grant_by_key(conn, user_id, grant_key)
            if grant is None:
                raise NotFound("Grant not found")
            plan = clawback_plan(
                grant, await store.open_grants(conn, user_id), account.owed, target, now
            )
            wanted = min(max(target, 0), grant.amount)
            if wanted == grant.clawed:
                return Clawback(None, False, grant.clawed, account.owed, account.current_credits)
            changes = list(plan.changes)
            if plan.new_grant is not None:
                returned = await store.create_grant(
                    conn, user_id, plan.new_grant, source_key=f"reinstate:{grant.id}:{wanted}"
                )
                changes.append(Change(returned, plan.new_grant.amount))
            prefix = f"clawback:{grant.id}:"
            sequence = await store.count_entries(conn, user_id, prefix) + 1
            entry = await store.post(
                conn,
                user_id=user_id,
                kind=EntryKind.CLAWBACK if wanted > grant.clawed else EntryKind.REINSTATE,
                key=f"{prefix}{sequence}",
                changes=changes,
                owed_delta=plan.owed_delta,
                reference=reference,
                description=description,
            )
            await store.set_clawed(conn, grant.id, wanted)
            owed = account.owed + plan.owed_delta
        return Clawback(entry, True, wanted, owed, entry.balance_after)

    # --- plans and periods ---

    async def set_plan(
        self,
        *,
        user_id: str,
        terms: PlanTerms,
        key: str,
        start_new_period: bool,
        period_end: datetime | None,
        now: datetime,
    ) -> tuple[Account, bool]:
        """The account's terms; with a new period, the open allowance expires and the plan's
        allowance is granted, both as entries keyed by `key`."""
        async with self._db.transaction() as conn:
            created = await store.create_account(conn, user_id, terms)
            account = await _locked(conn, user_id)
            if not created and await store.find_entry(conn, user_id, f"{key}:grant") is not None:
                return account, False
            await store.set_terms(conn, user_id, terms)
            if start_new_period or created:
                await self._start_period(
                    conn, account, terms, key, period_end or add_months(now, 1), now
                )
            updated = await store.get_account(conn, user_id)
        assert updated is not None
        return updated, True

    @staticmethod
    async def _start_period(
        conn: AsyncConnection,
        account: Account,
        terms: PlanTerms,
        key: str,
        period_end: datetime,
        now: datetime,
    ) -> None:
        allowance = [
            g
            for g in await store.open_grants(conn, account.user_id)
            if g.category is Category.ALLOWANCE
        ]
        if account.allowance_balance > 0:
            await store.post(
                conn,
                user_id=account.user_id,
                kind=EntryKind.EXPIRY,
                key=f"{key}:expiry",
                changes=[Change(g, -g.remaining, CloseReason.RESET) for g in allowance],
                description="Unused allowance expired (plan change)",
            )
        elif allowance:
            await store.close_grants(conn, [g.id for g in allowance], CloseReason.RESET)
        fresh = 0 if terms.is_unlimited else terms.monthly_allowance
        description = f"{terms.plan_name} plan allowance"
        if fresh > 0:
            new = NewGrant(Category.ALLOWANCE, fresh, DEFAULT_PRIORITY[Category.ALLOWANCE], None)
            await _add_grant(
                conn, account, new, key=f"{key}:grant", description=description, effective_at=now
            )
        else:
            # Still recorded: the entry is what makes a repeat of this plan change a no-op.
            await store.post(
                conn,
                user_id=account.user_id,
                kind=EntryKind.GRANT,
                key=f"{key}:grant",
                changes=[],
                description=description,
            )
        await store.start_period(conn, account.user_id, now, period_end)

    async def reset_due(self, *, as_of: datetime, batch_size: int) -> tuple[int, bool]:
        async with self._db.transaction() as conn:
            return await store.reset_due(conn, as_of=as_of, batch_size=batch_size)

    async def expire_due(self, *, as_of: datetime, batch_size: int) -> tuple[int, int, bool]:
        async with self._db.transaction() as conn:
            return await store.expire_due(conn, as_of=as_of, batch_size=batch_size)

    async def verify(self) -> tuple[int, list[LedgerDifference]]:
        async with self._db.transaction() as conn:
            return await store.verify(conn)

    # --- reads ---

    async def account(self, user_id: str) -> Account | None:
        async with self._db.autocommit() as conn:
            return await store.get_account(conn, user_id)

    async def credits(self, user_id: str) -> AccountView | None:
        """The account as its owner sees it: live grants and their balances."""
        now = datetime.now(UTC)
        async with self._db.transaction() as conn:
            account = await store.get_account(conn, user_id)
            if account is None:
                return None
            grants = [
                g for g in await store.open_grants(conn, user_id) if g.is_live(now) and g.remaining
            ]
        return AccountView(live_view(account, grants, now), grants, [])

    async def show(self, user_id: str) -> AccountView:
        """Everything support needs: balances, every grant (closed ones too), recent entries with
        their actor and reason."""
        now = datetime.now(UTC)
        async with self._db.transaction() as conn:
            account = await store.get_account(conn, user_id)
            if account is None:
                raise NotFound("Credit account not found")
            grants = await store.list_grants(conn, user_id, include_closed=True)
            entries = await store.list_entries(conn, user_id, limit=SHOW_ENTRIES, before_id=None)
        return AccountView(live_view(account, grants, now), grants, list(entries))

    async def transactions(
        self, user_id: str, *, limit: int, before_id: int | None
    ) -> Sequence[Entry]:
        async with self._db.autocommit() as conn:
            return await store.list_entries(conn, user_id, limit=limit, before_id=before_id)

    async def quote(self, *, user_id: str, amount: int, feature: str) -> tuple[Account, Quote]:
        """Whether a charge would be taken now, by the charge's own rule, without charging."""
        async with self._db.transaction() as conn:
            account = await store.get_account(conn, user_id)
            if account is None:
                raise NotFound("Credit account not found; initialize the user first")
            available = await store.live_balance(conn, user_id)
        return account, quote(account, available, amount, feature)


async def _locked(conn: AsyncConnection, user_id: str) -> Account:
    account = await store.get_account(conn, user_id, for_update=True)
    if account is None:
        raise NotFound("Credit account not found")
    return account


async def _add_grant(
    conn: AsyncConnection,
    account: Account,
    new: NewGrant,
    *,
    key: str,
    description: str,
    actor: str = "",
    reason: str = "",
    effective_at: datetime | None = None,
) -> Entry:
    """A new grant and the entry that creates it. What the account owes is settled first: the
    grant starts with its amount less the debt it paid."""
    settled = settle_owed(account.owed, new.amount)
    grant = await store.create_grant(
        conn, account.user_id, new, source_key=key, effective_at=effective_at
    )
    if settled:
        description += f" ({settled} settled what was owed)"
    return await store.post(
        conn,
        user_id=account.user_id,
        kind=EntryKind.GRANT,
        key=key,
        changes=[Change(grant, new.amount - settled)],
        owed_delta=-settled,
        reference=new.reference,
        description=description,
        actor=actor,
        reason=reason,
    )


def _less(changes: Sequence[Change], settled: int) -> list[Change]:
    """`changes` (credits coming in) less `settled` of them, taken from the grants spent first."""
    out = []
    left = settled
    for change in sorted(changes, key=lambda c: c.grant.order_key()):
        cut = min(change.delta, left)
        left -= cut
        out.append(Change(change.grant, change.delta - cut, change.close))
    return out


def _describe(new: NewGrant) -> str:
    if new.category is Category.PURCHASED:
        return f"Purchased {new.amount} credits"
    return f"{new.amount} {new.category.value} credits"


def _closed(grant: Grant) -> str:
    return grant.closed_reason.value if grant.closed_reason else "closed"
