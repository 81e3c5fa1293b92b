"""Service layer of the credit service: each use case's transaction.

A charge is one autocommit statement (store.charge, on the lean path of services.kit.db). Everything else that moves credits runs in a
short transaction that locks the account row first, reads what it needs (the account's open
grants, the entry a key names), decides with the rules in `domain`, and records one entry through
store.post; the unique (user_id, idempotency_key) constraint still backs every key up. The monthly
reset and grant expiry are set-based batches (batch_store.reset_due, batch_store.expire_due).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import ParamSpec

from sqlalchemy.ext.asyncio import AsyncConnection

from services.credit import batch_store, metrics, reservation_store, store
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
    refusal,
    settle_owed,
)
from services.credit.refunds import give_back
from services.credit.statements import CreditStore, HoldStore
from services.kit.db import Database
from services.kit.errors import DomainError, InvalidInput, InvalidState, NotFound, Unavailable

SHOW_ENTRIES = 50
P = ParamSpec("P")
# A refused charge is looked at again with a fresh snapshot; if the credits are there after all
# (a grant committed while the charge waited for the account lock is invisible to its statement),
# the charge is tried again.
CHARGE_ATTEMPTS = 3


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
    # Credits held by open reservations (already taken from the grants above).
    reserved: int = 0


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


def _counted(
    *, refusals: bool = False
) -> Callable[[Callable[P, Awaitable[Posting]]], Callable[P, Awaitable[Posting]]]:
    """Counts what a use case moved (services.credit.metrics), and with `refusals` what it
    refused, by reason."""

    def wrap(use_case: Callable[P, Awaitable[Posting]]) -> Callable[P, Awaitable[Posting]]:
        @functools.wraps(use_case)
        async def counted(*args: P.args, **kwargs: P.kwargs) -> Posting:
            try:
                posting = await use_case(*args, **kwargs)
            except DomainError as refused:
                if refusals:
                    metrics.REFUSED_CHARGES.labels(refused.kind.value).inc()
                raise
            metrics.record(posting)
            return posting

        return counted

    return wrap


class Ledger:
    def __init__(
        self, db: Database, records: CreditStore = store, holds: HoldStore = reservation_store
    ) -> None:
        self._db = db
        self._store = records
        self._holds = holds

    # --- charges and refunds ---

    @_counted(refusals=True)
    async def charge(
        self,
        *,
        user_id: str,
        amount: int,
        key: str,
        reference: str,
        description: str,
        feature: str,
        hold: bool = False,
    ) -> Posting:
        """One statement takes the credits (store.charge: the spending rule is in its SQL, see
        there). When it takes nothing, the reason is read back: the key's first result (a repeat),
        or the refusal `domain.refusal` names. With `hold`, a reservation:
        services.credit.reservations settles or releases it."""
        for _ in range(CHARGE_ATTEMPTS):
            async with self._db.lean() as lean:
                entry = await self._store.charge(
                    lean,
                    user_id=user_id,
                    amount=amount,
                    key=key,
                    reference=reference,
                    description=description,
                    feature=feature,
                    hold=hold,
                )
            if entry is not None:
                return Posting(entry, entry.balance_after, applied=True)
            async with self._db.autocommit() as conn:
                existing = await self._store.find_entry(conn, user_id, key)
                if existing is not None:
                    ensure_same_request(existing, EntryKind.CHARGE, usage=amount)
                    balance = await self._store.balance(conn, user_id)
                    return Posting(existing, balance, applied=False)
                account = await self._store.get_account(conn, user_id)
                available = await self._store.live_balance(conn, user_id)
            refused = refusal(account, available, amount, feature)
            if refused is not None:
                raise refused
        raise Unavailable("Credits are busy; please retry")

    @_counted()
    async def refund(
        self, *, user_id: str, charge_key: str, amount: int, key: str, description: str
    ) -> Posting:
        """Give back (part of) a charge, to the grants it came from, last-spent first; never more
        than is left of it. The account lock comes first, so what earlier refunds gave back is
        current: two refunds of one charge can never both take what is left."""
        now = datetime.now(UTC)
        async with self._db.transaction() as conn:
            account = await _locked(conn, user_id, self._store)
            existing = await self._store.find_entry(conn, user_id, key)
            if existing is not None:
                ensure_same_request(existing, EntryKind.REFUND)
                return Posting(existing, account.current_credits, applied=False)
            charged = await self._store.find_entry(conn, user_id, charge_key)
            if charged is None or charged.kind is not EntryKind.CHARGE:
                raise NotFound("Charge not found")
            entry = await give_back(
                conn, account, charged, amount, key, description, now, records=self._store
            )
            # Refunding a reservation releases it (failures and cancellations).
            await self._holds.release(conn, charged.id)
        return Posting(entry, entry.balance_after, applied=True)

    # --- grants ---

    @_counted()
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
            account = await _locked(conn, user_id, self._store)
            existing = await self._store.find_entry(conn, user_id, key)
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
                conn,
                account,
                new,
                key=key,
                description=description or _describe(new),
                records=self._store,
            )
        return Posting(entry, entry.balance_after, applied=True)

    async def admin_grant(self, request: AdminGrant, client_key: str) -> Posting:
        """Support's grant, recorded with its actor and reason; a repeated key returns the first
        one (and is refused for another request)."""
        key = f"admin:{client_key}" if client_key else f"admin:{uuid.uuid4().hex}"
        async with self._db.transaction() as conn:
            account = await _locked(conn, request.user_id, self._store)
            existing = await self._store.find_entry(conn, request.user_id, key)
            if existing is not None:
                ensure_same_request(existing, EntryKind.GRANT)
                first = await self._store.grant_by_key(conn, request.user_id, key)
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
                records=self._store,
            )
        return Posting(entry, entry.balance_after, applied=True)

    async def void(self, *, grant_id: int, reason: str, actor: str, client_key: str) -> Posting:
        """Support takes what is left of a promotional or compensation grant back; once per grant
        (a repeat returns the first void)."""
        reason = check_reason(reason)
        key = f"admin:{client_key}" if client_key else f"void:{grant_id}"
        async with self._db.transaction() as conn:
            found = await self._store.grant_by_id(conn, grant_id)
            if found is None:
                raise NotFound("Grant not found")
            account = await _locked(conn, found.user_id, self._store)
            existing = await self._store.find_entry(conn, found.user_id, key)
            if existing is not None:
                ensure_same_request(existing, EntryKind.VOID)
                return Posting(existing, account.current_credits, applied=False)
            grant = await self._store.grant_by_id(conn, grant_id)
            assert grant is not None
            if grant.category not in ADMIN_CATEGORIES:
                raise InvalidInput("Only promotional and compensation grants can be voided")
            if not grant.is_open:
                raise InvalidState(f"Grant is already closed ({_closed(grant)})")
            entry = await self._store.post(
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
            account = await _locked(conn, user_id, self._store)
            grant = await self._store.grant_by_key(conn, user_id, grant_key)
            if grant is None:
                raise NotFound("Grant not found")
            plan = clawback_plan(
                grant, await self._store.open_grants(conn, user_id), account.owed, target, now
            )
            wanted = min(max(target, 0), grant.amount)
            if wanted == grant.clawed:
                return Clawback(None, False, grant.clawed, account.owed, account.current_credits)
            changes = list(plan.changes)
            if plan.new_grant is not None:
                returned = await self._store.create_grant(
                    conn, user_id, plan.new_grant, source_key=f"reinstate:{grant.id}:{wanted}"
                )
                changes.append(Change(returned, plan.new_grant.amount))
            prefix = f"clawback:{grant.id}:"
            sequence = await self._store.count_entries(conn, user_id, prefix) + 1
            entry = await self._store.post(
                conn,
                user_id=user_id,
                kind=EntryKind.CLAWBACK if wanted > grant.clawed else EntryKind.REINSTATE,
                key=f"{prefix}{sequence}",
                changes=changes,
                owed_delta=plan.owed_delta,
                reference=reference,
                description=description,
            )
            await self._store.set_clawed(conn, grant.id, wanted)
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
            created = await self._store.create_account(conn, user_id, terms)
            account = await _locked(conn, user_id, self._store)
            if (
                not created
                and await self._store.find_entry(conn, user_id, f"{key}:grant") is not None
            ):
                return account, False
            await self._store.set_terms(conn, user_id, terms)
            if start_new_period or created:
                await self._start_period(
                    conn, account, terms, key, period_end or add_months(now, 1), now
                )
            updated = await self._store.get_account(conn, user_id)
        assert updated is not None
        return updated, True

    async def _start_period(
        self,
        conn: AsyncConnection,
        account: Account,
        terms: PlanTerms,
        key: str,
        period_end: datetime,
        now: datetime,
    ) -> None:
        allowance = [
            g
            for g in await self._store.open_grants(conn, account.user_id)
            if g.category is Category.ALLOWANCE
        ]
        if account.allowance_balance > 0:
            await self._store.post(
                conn,
                user_id=account.user_id,
                kind=EntryKind.EXPIRY,
                key=f"{key}:expiry",
                changes=[Change(g, -g.remaining, CloseReason.RESET) for g in allowance],
                description="Unused allowance expired (plan change)",
            )
        elif allowance:
            await self._store.close_grants(conn, [g.id for g in allowance], CloseReason.RESET)
        fresh = 0 if terms.is_unlimited else terms.monthly_allowance
        description = f"{terms.plan_name} plan allowance"
        if fresh > 0:
            new = NewGrant(Category.ALLOWANCE, fresh, DEFAULT_PRIORITY[Category.ALLOWANCE], None)
            await _add_grant(
                conn,
                account,
                new,
                key=f"{key}:grant",
                description=description,
                effective_at=now,
                records=self._store,
            )
        else:
            # Still recorded: the entry is what makes a repeat of this plan change a no-op.
            await self._store.post(
                conn,
                user_id=account.user_id,
                kind=EntryKind.GRANT,
                key=f"{key}:grant",
                changes=[],
                description=description,
            )
        await self._store.start_period(conn, account.user_id, now, period_end)

    async def reset_due(self, *, as_of: datetime, batch_size: int) -> tuple[int, bool]:
        async with self._db.transaction() as conn:
            return await batch_store.reset_due(conn, as_of=as_of, batch_size=batch_size)

    async def expire_due(self, *, as_of: datetime, batch_size: int) -> tuple[int, int, bool]:
        async with self._db.transaction() as conn:
            return await batch_store.expire_due(conn, as_of=as_of, batch_size=batch_size)

    async def verify(self) -> tuple[int, list[LedgerDifference]]:
        async with self._db.transaction() as conn:
            return await batch_store.verify(conn)

    # --- reads ---

    async def account(self, user_id: str) -> Account | None:
        async with self._db.autocommit() as conn:
            return await self._store.get_account(conn, user_id)

    async def credits(self, user_id: str) -> AccountView | None:
        """The account as its owner sees it: live grants and their balances (one statement: the
        hottest read, see store.credits_view)."""
        now = datetime.now(UTC)
        async with self._db.lean() as conn:
            found = await self._store.credits_view(conn, user_id)
        if found is None:
            return None
        account, open_grants, reserved = found
        grants = [g for g in open_grants if g.is_live(now) and g.remaining]
        return AccountView(live_view(account, grants, now), grants, [], reserved)

    async def show(self, user_id: str) -> AccountView:
        """Everything support needs: balances, every grant (closed ones too), recent entries with
        their actor and reason."""
        now = datetime.now(UTC)
        async with self._db.transaction() as conn:
            account = await self._store.get_account(conn, user_id)
            if account is None:
                raise NotFound("Credit account not found")
            grants = await self._store.list_grants(conn, user_id, include_closed=True)
            entries = await self._store.list_entries(
                conn, user_id, limit=SHOW_ENTRIES, before_id=None
            )
            reserved = await self._holds.held_by(conn, user_id)
        return AccountView(live_view(account, grants, now), grants, list(entries), reserved)

    async def transactions(
        self, user_id: str, *, limit: int, before_id: int | None
    ) -> Sequence[Entry]:
        async with self._db.autocommit() as conn:
            return await self._store.list_entries(conn, user_id, limit=limit, before_id=before_id)

    async def quote(self, *, user_id: str, amount: int, feature: str) -> tuple[Account, Quote]:
        """Whether a charge would be taken now, by the charge's own rule, without charging."""
        async with self._db.transaction() as conn:
            account = await self._store.get_account(conn, user_id)
            if account is None:
                raise NotFound("Credit account not found; initialize the user first")
            available = await self._store.live_balance(conn, user_id)
        return account, quote(account, available, amount, feature)


async def _locked(conn: AsyncConnection, user_id: str, records: CreditStore) -> Account:
    account = await records.get_account(conn, user_id, for_update=True)
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
    records: CreditStore = store,
) -> Entry:
    """A new grant and the entry that creates it. What the account owes is settled first: the
    grant starts with its amount less the debt it paid."""
    settled = settle_owed(account.owed, new.amount)
    grant = await records.create_grant(
        conn, account.user_id, new, source_key=key, effective_at=effective_at
    )
    if settled:
        description += f" ({settled} settled what was owed)"
    return await records.post(
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


def _describe(new: NewGrant) -> str:
    if new.category is Category.PURCHASED:
        return f"Purchased {new.amount} credits"
    return f"{new.amount} {new.category.value} credits"


def _closed(grant: Grant) -> str:
    return grant.closed_reason.value if grant.closed_reason else "closed"
