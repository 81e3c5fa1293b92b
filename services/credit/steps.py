"""What the credit use cases share: the statements they run (`Stores`, one base `UseCase`), and
steps inside the transaction their caller opened: the account lock every writer takes first, and
(`UseCase._add_grant`) a new grant with the entry that creates it. (Giving credits back to the
grants a charge came from, the largest shared step, is refunds.give_back.)"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.credit import entry_store, grant_store, reservation_store, store
from services.credit.domain import Account, Change, Entry, EntryKind, NewGrant
from services.credit.grant_rules import settle_owed
from services.credit.statements import CreditStore, EntryStore, GrantStore, HoldStore
from services.kit.db import Database
from services.kit.errors import NotFound
from services.kit.sql import Connection


@dataclass(frozen=True)
class Stores:
    """The statements the credit use cases run: the store modules, or (unit tests) fakes; one
    fake object may stand for all four."""

    records: CreditStore = store
    entries: EntryStore = entry_store
    grants: GrantStore = grant_store
    holds: HoldStore = reservation_store


class UseCase:
    """Base of the credit service layer (Ledger, Grants, Plans, Reservations): the database its
    transactions run on and the statements it runs in them."""

    def __init__(self, db: Database, stores: Stores | None = None) -> None:
        stores = stores or Stores()
        self._db = db
        self._records = stores.records
        self._entries = stores.entries
        self._grants = stores.grants
        self._holds = stores.holds

    async def _add_grant(
        self,
        conn: Connection,
        account: Account,
        new: NewGrant,
        *,
        key: str,
        description: str,
        actor: str = "",
        reason: str = "",
        effective_at: datetime | None = None,
    ) -> Entry:
        """A new grant and the entry that creates it, inside the caller's transaction (which holds
        the account lock). What the account owes is settled first: the grant starts with its
        amount less the debt it paid."""
        settled = settle_owed(account.owed, new.amount)
        grant = await self._grants.create_grant(
            conn, account.user_id, new, source_key=key, effective_at=effective_at
        )
        if settled:
            description += f" ({settled} settled what was owed)"
        return await self._entries.post(
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


async def locked(conn: Connection, user_id: str, records: CreditStore) -> Account:
    account = await records.get_account(conn, user_id, for_update=True)
    if account is None:
        raise NotFound("Credit account not found")
    return account
