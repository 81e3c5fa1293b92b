"""Service layer of the credit service: charges, refunds, and reading an account and its ledger.
Grants, voids and clawbacks: grants.py; plans, periods and expiry: plans.py; settling
reservations: reservations.py.

A charge is one autocommit statement (store.charge, on the lean path of services.kit.db). Everything
else that moves credits runs in a short transaction that locks the account row first
(steps.locked), reads what it needs (the account's open grants, the entry a key names), decides
with the rules in `grant_rules`, and records one entry through entry_store.post; the unique
(user_id, idempotency_key) constraint still backs every key up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from services.credit import batch_store
from services.credit.domain import (
    Account,
    Entry,
    EntryKind,
    Grant,
    LedgerDifference,
    Posting,
    ensure_same_request,
)
from services.credit.grant_rules import Quote, quote, refusal
from services.credit.metrics import counted
from services.credit.refunds import give_back
from services.credit.steps import UseCase, locked
from services.kit.errors import NotFound, Unavailable

SHOW_ENTRIES = 50
# A refused charge is looked at again with a fresh snapshot; if the credits are there after all
# (a grant committed while the charge waited for the account lock is invisible to its statement),
# the charge is tried again.
CHARGE_ATTEMPTS = 3


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


class Ledger(UseCase):
    # --- charges and refunds ---

    @counted(refusals=True)
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
        or the refusal `grant_rules.refusal` names. With `hold`, a reservation:
        services.credit.reservations settles or releases it."""
        for _ in range(CHARGE_ATTEMPTS):
            async with self._db.lean() as lean:
                entry = await self._records.charge(
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
                existing = await self._entries.find_entry(conn, user_id, key)
                if existing is not None:
                    ensure_same_request(existing, EntryKind.CHARGE, usage=amount)
                    balance = await self._records.balance(conn, user_id)
                    return Posting(existing, balance, applied=False)
                account = await self._records.get_account(conn, user_id)
                available = await self._records.live_balance(conn, user_id)
            refused = refusal(account, available, amount, feature)
            if refused is not None:
                raise refused
        raise Unavailable("Credits are busy; please retry")

    @counted()
    async def refund(
        self, *, user_id: str, charge_key: str, amount: int, key: str, description: str
    ) -> Posting:
        """Give back (part of) a charge, to the grants it came from, last-spent first; never more
        than is left of it. The account lock comes first, so what earlier refunds gave back is
        current: two refunds of one charge can never both take what is left."""
        now = datetime.now(UTC)
        async with self._db.transaction() as conn:
            account = await locked(conn, user_id, self._records)
            existing = await self._entries.find_entry(conn, user_id, key)
            if existing is not None:
                ensure_same_request(existing, EntryKind.REFUND)
                return Posting(existing, account.current_credits, applied=False)
            charged = await self._entries.find_entry(conn, user_id, charge_key)
            if charged is None or charged.kind is not EntryKind.CHARGE:
                raise NotFound("Charge not found")
            entry = await give_back(
                conn, account, charged, amount, key, description, now, self._entries, self._grants
            )
            # Refunding a reservation releases it (failures and cancellations).
            await self._holds.release(conn, charged.id)
        return Posting(entry, entry.balance_after, applied=True)

    async def verify(self) -> tuple[int, list[LedgerDifference]]:
        async with self._db.transaction() as conn:
            return await batch_store.verify(conn)

    # --- reads ---

    async def account(self, user_id: str) -> Account | None:
        async with self._db.autocommit() as conn:
            return await self._records.get_account(conn, user_id)

    async def credits(self, user_id: str) -> AccountView | None:
        """The account as its owner sees it: live grants and their balances (one statement: the
        hottest read, see store.credits_view)."""
        now = datetime.now(UTC)
        async with self._db.lean() as conn:
            found = await self._records.credits_view(conn, user_id)
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
            account = await self._records.get_account(conn, user_id)
            if account is None:
                raise NotFound("Credit account not found")
            grants = await self._grants.list_grants(conn, user_id, include_closed=True)
            entries = await self._entries.list_entries(
                conn, user_id, limit=SHOW_ENTRIES, before_id=None
            )
            reserved = await self._holds.held_by(conn, user_id)
        return AccountView(live_view(account, grants, now), grants, list(entries), reserved)

    async def transactions(
        self, user_id: str, *, limit: int, before_id: int | None
    ) -> Sequence[Entry]:
        async with self._db.autocommit() as conn:
            return await self._entries.list_entries(conn, user_id, limit=limit, before_id=before_id)

    async def quote(self, *, user_id: str, amount: int, feature: str) -> tuple[Account, Quote]:
        """Whether a charge would be taken now, by the charge's own rule, without charging."""
        async with self._db.transaction() as conn:
            account = await self._records.get_account(conn, user_id)
            if account is None:
                raise NotFound("Credit account not found; initialize the user first")
            available = await self._records.live_balance(conn, user_id)
        return account, quote(account, available, amount, feature)
