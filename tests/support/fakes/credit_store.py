"""The credit statements (services.credit.store, entry_store, grant_store, and the reservation
statements the service layers use) in memory, one object for every store Protocol of
services.credit.statements, for unit tests of the credit service layers. The one statement that
holds a rule, the charge, is played by the Python statement of that rule (grant_rules.refusal and
grant_rules.charge_takes); the integration tests hold the real SQL to the same rule. Other rules
are the domain's own functions, called here, never copied."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, cast

from psycopg import AsyncConnection as LeanConnection

from services.credit.domain import (
    Account,
    Category,
    Change,
    CloseReason,
    Entry,
    EntryKind,
    Grant,
    GrantDelta,
    NewGrant,
    PlanTerms,
    column_deltas,
)
from services.credit.grant_rules import available, charge_takes, refusal
from services.credit.reservation_store import Reservation
from services.kit.sql import Connection
from tests.support.fakes.journal import Journal


@dataclass
class _Share:
    charge_id: int
    refund_id: int
    from_grant: int | None
    category: Category
    back: int


@dataclass
class _State:
    accounts: dict[str, Account]
    grants: dict[int, Grant]
    entries: dict[int, Entry]
    refund_of: dict[int, int]  # refund entry id -> charge entry id
    shares: list[_Share]
    holds: dict[int, tuple[str, int, bool]]  # hold entry id -> (user, held, open)
    next_id: int
    # Settled holds: entry id -> (cost, charged, uncharged); a closed hold not here was released.
    settlements: dict[int, tuple[int, int, int]] = field(default_factory=dict)


class FakeCreditStore:
    def __init__(self, journal: Journal | None = None) -> None:
        self.journal = journal or Journal()
        self.s = _State({}, {}, {}, {}, [], {}, 1)

    def snapshot(self) -> Any:
        return copy.deepcopy(self.s)

    def restore(self, state: Any) -> None:
        self.s = state

    def _id(self) -> int:
        self.s.next_id += 1
        return self.s.next_id

    # --- test helpers ---

    def grants_of(self, user_id: str) -> list[Grant]:
        return [g for g in self.s.grants.values() if g.user_id == user_id]

    def entries_of(self, user_id: str) -> list[Entry]:
        return [e for e in self.s.entries.values() if e.user_id == user_id]

    # --- reads ---

    async def get_account(
        self, conn: Connection, user_id: str, *, for_update: bool = False
    ) -> Account | None:
        return self.s.accounts.get(user_id)

    async def find_entry(self, conn: Connection, user_id: str, key: str) -> Entry | None:
        return next(
            (e for e in self.entries_of(user_id) if e.idempotency_key == key),
            None,
        )

    async def open_grants(self, conn: Connection, user_id: str) -> list[Grant]:
        return sorted((g for g in self.grants_of(user_id) if g.is_open), key=lambda g: g.id)

    async def credits_view(
        self, conn: LeanConnection[Any], user_id: str
    ) -> tuple[Account, list[Grant], int] | None:
        account = self.s.accounts.get(user_id)
        if account is None:
            return None
        grants = sorted((g for g in self.grants_of(user_id) if g.is_open), key=Grant.order_key)
        held = sum(h for user, h, is_open in self.s.holds.values() if user == user_id and is_open)
        return account, grants, held

    async def list_grants(
        self, conn: Connection, user_id: str, *, include_closed: bool, limit: int = 200
    ) -> list[Grant]:
        grants = [g for g in self.grants_of(user_id) if include_closed or g.is_open]
        return sorted(grants, key=lambda g: g.id)[:limit]

    async def grant_by_key(self, conn: Connection, user_id: str, source_key: str) -> Grant | None:
        return next((g for g in self.grants_of(user_id) if g.source_key == source_key), None)

    async def grant_by_id(self, conn: Connection, grant_id: int) -> Grant | None:
        return self.s.grants.get(grant_id)

    async def grants_by_id(self, conn: Connection, ids: Sequence[int]) -> dict[int, Grant]:
        return {i: self.s.grants[i] for i in ids if i in self.s.grants}

    async def refunded_of(self, conn: Connection, charge_id: int) -> tuple[int, int, int]:
        refunds = [self.s.entries[r] for r, c in self.s.refund_of.items() if c == charge_id]
        shared = {x.refund_id for x in self.s.shares}
        allowance = sum(r.allowance_delta for r in refunds if r.id not in shared)
        purchased = sum(r.purchased_delta for r in refunds if r.id not in shared)
        for share in self.s.shares:
            if share.charge_id == charge_id:
                if share.category is Category.ALLOWANCE:
                    allowance += share.back
                else:
                    purchased += share.back
        return allowance, purchased, -sum(r.usage for r in refunds)

    async def left_of_charge(self, conn: Connection, charge_id: int) -> dict[int, int]:
        charge = self.s.entries[charge_id]
        return {
            p.grant_id: -p.delta
            - sum(
                x.back
                for x in self.s.shares
                if x.charge_id == charge_id and x.from_grant == p.grant_id
            )
            for p in charge.grants
        }

    async def live_balance(self, conn: Connection, user_id: str) -> int:
        return available(self.grants_of(user_id), datetime.now(UTC))

    async def balance(self, conn: Connection, user_id: str) -> int:
        return self.s.accounts[user_id].current_credits

    async def list_entries(
        self, conn: Connection, user_id: str, *, limit: int, before_id: int | None
    ) -> Sequence[Entry]:
        entries = [e for e in self.entries_of(user_id) if before_id is None or e.id < before_id]
        return sorted(entries, key=lambda e: -e.id)[:limit]

    async def count_entries(self, conn: Connection, user_id: str, key_prefix: str) -> int:
        return sum(1 for e in self.entries_of(user_id) if e.idempotency_key.startswith(key_prefix))

    # --- writes ---

    async def charge(
        self,
        conn: LeanConnection[Any],
        *,
        user_id: str,
        amount: int,
        key: str,
        reference: str,
        description: str,
        feature: str,
        hold: bool = False,
    ) -> Entry | None:
        account = self.s.accounts.get(user_id)
        if account is None or await self.find_entry(cast(Any, conn), user_id, key) is not None:
            return None
        now = datetime.now(UTC)
        grants = self.grants_of(user_id)
        if refusal(account, available(grants, now), amount, feature) is not None:
            return None  # the statement writes nothing; the ledger reads the reason back
        changes = [] if account.terms.is_unlimited else charge_takes(grants, amount, now)
        assert changes is not None  # refusal() found enough live credits
        self.journal.add("credit_store.charge")
        entry = self._record(
            user_id,
            EntryKind.CHARGE,
            key,
            changes,
            usage=amount,
            used_delta=amount,
            reference=reference,
            description=description,
        )
        if hold:
            self.s.holds[entry.id] = (user_id, amount, True)
        return entry

    async def create_grant(
        self,
        conn: Connection,
        user_id: str,
        new: NewGrant,
        *,
        source_key: str,
        effective_at: datetime | None = None,
    ) -> Grant:
        grant = Grant(
            id=self._id(),
            user_id=user_id,
            category=new.category,
            amount=new.amount,
            remaining=0,
            priority=new.priority,
            effective_at=effective_at or datetime.now(UTC),
            expires_at=new.expires_at,
            source_key=source_key,
            reference=new.reference,
        )
        self.s.grants[grant.id] = grant
        return grant

    async def post(
        self,
        conn: Connection,
        *,
        user_id: str,
        kind: EntryKind,
        key: str,
        changes: Sequence[Change],
        owed_delta: int = 0,
        usage: int = 0,
        used_delta: int = 0,
        reference: str = "",
        description: str = "",
        actor: str = "",
        reason: str = "",
        refund_of: int | None = None,
    ) -> Entry:
        self.journal.add(f"credit_store.post:{kind.value}")
        entry = self._record(
            user_id,
            kind,
            key,
            changes,
            owed_delta=owed_delta,
            usage=usage,
            used_delta=used_delta,
            reference=reference,
            description=description,
            actor=actor,
            reason=reason,
        )
        if refund_of is not None:
            self.s.refund_of[entry.id] = refund_of
        return entry

    def _record(
        self,
        user_id: str,
        kind: EntryKind,
        key: str,
        changes: Sequence[Change],
        *,
        owed_delta: int = 0,
        usage: int = 0,
        used_delta: int = 0,
        reference: str = "",
        description: str = "",
        actor: str = "",
        reason: str = "",
    ) -> Entry:
        if any(e.idempotency_key == key for e in self.entries_of(user_id)):
            raise AssertionError(f"unique (user_id, idempotency_key) violated: {key}")
        now = datetime.now(UTC)
        for change in changes:
            grant = self.s.grants[change.grant.id]
            remaining = grant.remaining + change.delta
            assert remaining >= 0, "CHECK (remaining >= 0)"
            closed = change.close is not None
            self.s.grants[grant.id] = replace(
                grant,
                remaining=remaining,
                closed_at=now if closed else grant.closed_at,
                closed_reason=change.close if closed else grant.closed_reason,
            )
        columns = column_deltas(changes)
        account = self.s.accounts[user_id]
        account = replace(
            account,
            allowance_balance=account.allowance_balance + columns["allowance"],
            purchased_balance=account.purchased_balance + columns["purchased"],
            bonus_balance=account.bonus_balance + columns["bonus"],
            owed=account.owed + owed_delta,
            used_this_period=max(account.used_this_period + used_delta, 0),
        )
        assert min(account.allowance_balance, account.purchased_balance, account.bonus_balance) >= 0
        self.s.accounts[user_id] = account
        entry = Entry(
            id=self._id(),
            user_id=user_id,
            kind=kind,
            idempotency_key=key,
            amount=sum(columns.values()),
            allowance_delta=columns["allowance"],
            purchased_delta=columns["purchased"],
            bonus_delta=columns["bonus"],
            owed_delta=owed_delta,
            usage=usage,
            reference=reference,
            description=description,
            balance_after=account.current_credits,
            created_at=now,
            actor=actor,
            reason=reason,
            grants=tuple(GrantDelta(c.grant.id, c.grant.category, c.delta) for c in changes),
        )
        self.s.entries[entry.id] = entry
        return entry

    async def record_refund_shares(
        self,
        conn: Connection,
        charge_id: int,
        refund_id: int,
        shares: Sequence[tuple[int | None, Category, int]],
    ) -> None:
        self.s.shares += [_Share(charge_id, refund_id, g, c, n) for g, c, n in shares]

    async def close_grants(self, conn: Connection, ids: Sequence[int], reason: CloseReason) -> None:
        now = datetime.now(UTC)
        for i in ids:
            grant = self.s.grants[i]
            if grant.remaining == 0 and grant.is_open:
                self.s.grants[i] = replace(grant, closed_at=now, closed_reason=reason)

    async def set_clawed(self, conn: Connection, grant_id: int, clawed: int) -> None:
        self.s.grants[grant_id] = replace(self.s.grants[grant_id], clawed=clawed)

    async def create_account(self, conn: Connection, user_id: str, terms: PlanTerms) -> bool:
        if user_id in self.s.accounts:
            return False
        now = datetime.now(UTC)
        self.s.accounts[user_id] = Account(user_id, terms, 0, 0, 0, now, now)
        return True

    async def set_terms(self, conn: Connection, user_id: str, terms: PlanTerms) -> None:
        self.s.accounts[user_id] = replace(self.s.accounts[user_id], terms=terms)

    async def start_period(
        self, conn: Connection, user_id: str, start: datetime, end: datetime
    ) -> None:
        self.s.accounts[user_id] = replace(
            self.s.accounts[user_id],
            used_this_period=0,
            period_started_at=start,
            credit_reset_at=end,
        )

    # --- the reservation statements the ledger uses (services.credit.reservation_store) ---

    async def release(self, conn: Connection, entry_id: int) -> None:
        hold = self.s.holds.get(entry_id)
        if hold is not None:
            self.s.holds[entry_id] = (hold[0], hold[1], False)

    async def of_entry(self, conn: Connection, entry_id: int) -> Reservation | None:
        hold = self.s.holds.get(entry_id)
        if hold is None:
            return None
        user, held, is_open = hold
        if is_open:
            return Reservation(entry_id, user, held, "open", None, None, 0)
        if entry_id in self.s.settlements:
            cost, charged, uncharged = self.s.settlements[entry_id]
            return Reservation(entry_id, user, held, "settled", cost, charged, uncharged)
        return Reservation(entry_id, user, held, "released", None, None, 0)

    async def settle(
        self,
        conn: Connection,
        entry_id: int,
        *,
        cost: int,
        charged: int,
        uncharged: int,
        settle_entry: int | None,
    ) -> bool:
        hold = self.s.holds.get(entry_id)
        if hold is None or not hold[2]:
            return False
        assert 0 <= charged <= hold[1]  # the table's CHECK
        self.journal.add("credit_store.settle")
        self.s.holds[entry_id] = (hold[0], hold[1], False)
        self.s.settlements[entry_id] = (cost, charged, uncharged)
        return True

    async def held_by(self, conn: Connection, user_id: str) -> int:
        return sum(
            held for user, held, is_open in self.s.holds.values() if user == user_id and is_open
        )
