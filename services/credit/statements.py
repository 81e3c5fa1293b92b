"""What the credit service layers (services.credit.ledger, grants, plans, reservations and the
refund step) need from their stores: the statements of services.credit.store (CreditStore),
entry_store (EntryStore), grant_store (GrantStore) and reservation_store (HoldStore), each of which
satisfies its Protocol as a module; unit tests give one in-memory fake for all of them instead
(tests/support/fakes/credit_store.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from psycopg import AsyncConnection as LeanConnection

from services.credit.domain import (
    Account,
    Category,
    Change,
    CloseReason,
    Entry,
    EntryKind,
    Grant,
    NewGrant,
    PlanTerms,
)
from services.credit.reservation_store import Reservation
from services.kit.sql import Connection


class CreditStore(Protocol):
    """Accounts: balances, the credits read, the charge, plan terms and periods."""

    async def get_account(
        self, conn: Connection, user_id: str, *, for_update: bool = False
    ) -> Account | None: ...

    async def credits_view(
        self, conn: LeanConnection[Any], user_id: str
    ) -> tuple[Account, list[Grant], int] | None: ...

    async def live_balance(self, conn: Connection, user_id: str) -> int: ...

    async def balance(self, conn: Connection, user_id: str) -> int: ...

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
    ) -> Entry | None: ...

    async def create_account(self, conn: Connection, user_id: str, terms: PlanTerms) -> bool: ...

    async def set_terms(self, conn: Connection, user_id: str, terms: PlanTerms) -> None: ...

    async def start_period(
        self, conn: Connection, user_id: str, start: datetime, end: datetime
    ) -> None: ...


class EntryStore(Protocol):
    """Entries and their postings, and what a charge's refunds gave back."""

    async def find_entry(self, conn: Connection, user_id: str, key: str) -> Entry | None: ...

    async def refunded_of(self, conn: Connection, charge_id: int) -> tuple[int, int, int]: ...

    async def left_of_charge(self, conn: Connection, charge_id: int) -> dict[int, int]: ...

    async def list_entries(
        self, conn: Connection, user_id: str, *, limit: int, before_id: int | None
    ) -> Sequence[Entry]: ...

    async def count_entries(self, conn: Connection, user_id: str, key_prefix: str) -> int: ...

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
    ) -> Entry: ...

    async def record_refund_shares(
        self,
        conn: Connection,
        charge_id: int,
        refund_id: int,
        shares: Sequence[tuple[int | None, Category, int]],
    ) -> None: ...


class GrantStore(Protocol):
    """Grants: reads, and the changes no entry records."""

    async def open_grants(self, conn: Connection, user_id: str) -> list[Grant]: ...

    async def list_grants(
        self, conn: Connection, user_id: str, *, include_closed: bool, limit: int = 200
    ) -> list[Grant]: ...

    async def grant_by_key(
        self, conn: Connection, user_id: str, source_key: str
    ) -> Grant | None: ...

    async def grant_by_id(self, conn: Connection, grant_id: int) -> Grant | None: ...

    async def grants_by_id(self, conn: Connection, ids: Sequence[int]) -> dict[int, Grant]: ...

    async def create_grant(
        self,
        conn: Connection,
        user_id: str,
        new: NewGrant,
        *,
        source_key: str,
        effective_at: datetime | None = None,
    ) -> Grant: ...

    async def close_grants(
        self, conn: Connection, ids: Sequence[int], reason: CloseReason
    ) -> None: ...

    async def set_clawed(self, conn: Connection, grant_id: int, clawed: int) -> None: ...


class HoldStore(Protocol):
    """The reservation statements: services.credit.reservation_store, or a fake."""

    async def release(self, conn: Connection, entry_id: int) -> None: ...

    async def held_by(self, conn: Connection, user_id: str) -> int: ...

    async def of_entry(self, conn: Connection, entry_id: int) -> Reservation | None: ...

    async def settle(
        self,
        conn: Connection,
        entry_id: int,
        *,
        cost: int,
        charged: int,
        uncharged: int,
        settle_entry: int | None,
    ) -> bool: ...
