"""Service layer for reservations: work that is priced by what it measures holds the most it can
cost when it starts, and is settled when it ends.

- **Reserve** is a charge with `hold` (Ledger.charge → store.charge): the same one statement,
  exactly-once by key and race-free, that takes the credits from the grants in spending order, so
  held credits are not spendable (available = balance - open reservations) and concurrent
  reservations can never overspend.
- **Settle** (here) keeps what the work cost, never more than the hold, and gives the rest back to
  the grants it came from (as a refund of the hold, last-spent first); a cost above the hold is
  recorded as uncharged. Exactly once: the reservation row moves from open to settled in the same
  transaction, under the account lock, as the entry that gives the rest back.
- **Release** is a Refund of the hold (Ledger.refund marks the reservation released).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from services.credit import reservation_store
from services.credit.domain import EntryKind, LedgerDifference, settlement
from services.credit.refunds import give_back
from services.credit.steps import UseCase, locked
from services.kit.errors import InvalidInput, InvalidState, NotFound


@dataclass(frozen=True)
class Settled:
    charged: int
    returned: int
    uncharged: int
    remaining_credits: int
    applied: bool


@dataclass(frozen=True)
class ReservationReport:
    open: int
    held: int
    differences: list[LedgerDifference]


class Reservations(UseCase):
    async def settle(
        self, *, user_id: str, reservation_key: str, cost: int, key: str, description: str
    ) -> Settled:
        now = datetime.now(UTC)
        async with self._db.transaction() as conn:
            account = await locked(conn, user_id, self._records)
            hold = await self._entries.find_entry(conn, user_id, reservation_key)
            if hold is None or hold.kind is not EntryKind.CHARGE:
                raise NotFound("Reservation not found")
            reservation = await self._holds.of_entry(conn, hold.id)
            if reservation is None:
                raise NotFound("Reservation not found")
            if reservation.state == "settled":
                if reservation.cost != cost:
                    raise InvalidInput("idempotencyKey was already used for a different request")
                assert reservation.charged is not None
                return Settled(
                    reservation.charged,
                    reservation.held - reservation.charged,
                    reservation.uncharged,
                    account.current_credits,
                    applied=False,
                )
            if reservation.state == "released":
                raise InvalidState("Reservation was released")
            split = settlement(reservation.held, cost)
            entry = None
            if split.returned:
                entry = await give_back(
                    conn,
                    account,
                    hold,
                    split.returned,
                    key,
                    description,
                    now,
                    self._entries,
                    self._grants,
                )
            await self._holds.settle(
                conn,
                hold.id,
                cost=cost,
                charged=split.charged,
                uncharged=split.uncharged,
                settle_entry=entry.id if entry else None,
            )
            remaining = entry.balance_after if entry else account.current_credits
        return Settled(split.charged, split.returned, split.uncharged, remaining, applied=True)

    async def held(self, user_id: str) -> int:
        async with self._db.autocommit() as conn:
            return await self._holds.held_by(conn, user_id)

    async def verify(self) -> ReservationReport:
        async with self._db.transaction() as conn:
            count, held, problems = await reservation_store.verify(conn)
        return ReservationReport(
            count, held, [LedgerDifference(u, p, a, b) for u, p, a, b in problems]
        )
