"""Service layer of the credit service: credits that come in or are taken back outside a charge. A
grant (a plan's purchase, a pack, a promotion), support's grants and voids (services.credit.admin),
and clawbacks when Stripe takes the money back. Each is one transaction that locks the account
first (steps.locked) and records one entry, exactly once per idempotency key."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from services.credit.admin_rules import AdminGrant, check_reason
from services.credit.domain import (
    ADMIN_CATEGORIES,
    DEFAULT_PRIORITY,
    Category,
    Change,
    CloseReason,
    Entry,
    EntryKind,
    Grant,
    NewGrant,
    Posting,
    ensure_same_request,
)
from services.credit.grant_rules import clawback_plan
from services.credit.metrics import counted
from services.credit.steps import UseCase, locked
from services.kit.errors import InvalidInput, InvalidState, NotFound


@dataclass(frozen=True)
class Clawback:
    entry: Entry | None
    applied: bool
    clawed: int
    owed: int
    remaining_credits: int


class Grants(UseCase):
    @counted()
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
            account = await locked(conn, user_id, self._records)
            existing = await self._entries.find_entry(conn, user_id, key)
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
            entry = await self._add_grant(
                conn,
                account,
                new,
                key=key,
                description=description or _describe(new),
            )
        return Posting(entry, entry.balance_after, applied=True)

    async def admin_grant(self, request: AdminGrant, client_key: str) -> Posting:
        """Support's grant, recorded with its actor and reason; a repeated key returns the first
        one (and is refused for another request)."""
        key = f"admin:{client_key}" if client_key else f"admin:{uuid.uuid4().hex}"
        async with self._db.transaction() as conn:
            account = await locked(conn, request.user_id, self._records)
            existing = await self._entries.find_entry(conn, request.user_id, key)
            if existing is not None:
                ensure_same_request(existing, EntryKind.GRANT)
                first = await self._grants.grant_by_key(conn, request.user_id, key)
                if first is None or (first.category, first.amount) != (
                    request.category,
                    request.amount,
                ):
                    raise InvalidInput("idempotencyKey was already used for a different request")
                return Posting(existing, account.current_credits, applied=False)
            new = NewGrant(request.category, request.amount, request.priority, request.expires_at)
            entry = await self._add_grant(
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
            found = await self._grants.grant_by_id(conn, grant_id)
            if found is None:
                raise NotFound("Grant not found")
            account = await locked(conn, found.user_id, self._records)
            existing = await self._entries.find_entry(conn, found.user_id, key)
            if existing is not None:
                ensure_same_request(existing, EntryKind.VOID)
                return Posting(existing, account.current_credits, applied=False)
            grant = await self._grants.grant_by_id(conn, grant_id)
            assert grant is not None
            if grant.category not in ADMIN_CATEGORIES:
                raise InvalidInput("Only promotional and compensation grants can be voided")
            if not grant.is_open:
                raise InvalidState(f"Grant is already closed ({_closed(grant)})")
            entry = await self._entries.post(
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
            account = await locked(conn, user_id, self._records)
            grant = await self._grants.grant_by_key(conn, user_id, grant_key)
            if grant is None:
                raise NotFound("Grant not found")
            plan = clawback_plan(
                grant, await self._grants.open_grants(conn, user_id), account.owed, target, now
            )
            wanted = min(max(target, 0), grant.amount)
            if wanted == grant.clawed:
                return Clawback(None, False, grant.clawed, account.owed, account.current_credits)
            changes = list(plan.changes)
            if plan.new_grant is not None:
                returned = await self._grants.create_grant(
                    conn, user_id, plan.new_grant, source_key=f"reinstate:{grant.id}:{wanted}"
                )
                changes.append(Change(returned, plan.new_grant.amount))
            prefix = f"clawback:{grant.id}:"
            sequence = await self._entries.count_entries(conn, user_id, prefix) + 1
            entry = await self._entries.post(
                conn,
                user_id=user_id,
                kind=EntryKind.CLAWBACK if wanted > grant.clawed else EntryKind.REINSTATE,
                key=f"{prefix}{sequence}",
                changes=changes,
                owed_delta=plan.owed_delta,
                reference=reference,
                description=description,
            )
            await self._grants.set_clawed(conn, grant.id, wanted)
            owed = account.owed + plan.owed_delta
        return Clawback(entry, True, wanted, owed, entry.balance_after)


def _describe(new: NewGrant) -> str:
    if new.category is Category.PURCHASED:
        return f"Purchased {new.amount} credits"
    return f"{new.amount} {new.category.value} credits"


def _closed(grant: Grant) -> str:
    return grant.closed_reason.value if grant.closed_reason else "closed"
