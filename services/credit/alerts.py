"""Service layer of balance alerts: listing a user's alerts, arming auto top-up, alerts other
services raise, the crossings billing acts on, and expiry warnings. Crossings themselves are
detected by the trigger on credit.accounts (migration 0004), in the transaction of the change."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from services.credit import alert_store
from services.credit.alert_rules import check_raised, check_threshold
from services.credit.alert_store import AlertRow, Crossing
from services.kit.db import Database
from services.kit.errors import InvalidInput, NotFound
from services.kit.pagination import page_limit
from services.kit.sql import Connection


class AlertStore(Protocol):
    async def list_alerts(self, conn: Connection, user_id: str, limit: int) -> list[AlertRow]: ...
    async def set_topup_threshold(
        self, conn: Connection, user_id: str, threshold: int | None
    ) -> bool: ...
    async def raise_alert(
        self,
        conn: Connection,
        user_id: str,
        kind: str,
        message: str,
        key: str,
        data: dict[str, Any],
    ) -> bool: ...
    async def set_low_threshold(
        self, conn: Connection, user_id: str, threshold: int | None
    ) -> tuple[int, bool] | None: ...
    async def pending_topups(self, conn: Connection, limit: int) -> list[Crossing]: ...
    async def finish_topup(self, conn: Connection, crossing_id: int) -> None: ...
    async def warn_expiring(self, conn: Connection, within_hours: int, limit: int) -> int: ...


class Alerts:
    def __init__(self, db: Database, records: AlertStore = alert_store) -> None:
        self._db = db
        self._store = records

    async def recent(self, user_id: str, limit: int) -> Sequence[AlertRow]:
        size = page_limit(limit)
        async with self._db.autocommit() as conn:
            return await self._store.list_alerts(conn, user_id, size)

    async def set_low_threshold(self, user_id: str, threshold: int | None) -> tuple[int, bool]:
        """The user's own low-balance threshold (None: back to the plan's); (in force, plan's)."""
        if threshold is not None:
            check_threshold(threshold)
        async with self._db.transaction() as conn:
            saved = await self._store.set_low_threshold(conn, user_id, threshold)
        if saved is None:
            raise NotFound("Credit account not found; initialize the user first")
        return saved

    async def arm_topup(self, user_id: str, threshold: int) -> None:
        """Billing's auto top-up threshold for the user (0 disarms it)."""
        check_threshold(threshold)
        async with self._db.transaction() as conn:
            if not await self._store.set_topup_threshold(conn, user_id, threshold or None):
                raise NotFound("Credit account not found")

    async def raise_alert(self, user_id: str, kind: str, message: str, source_key: str) -> bool:
        """An alert another service raises (a failed top-up; its webhook event is that service's),
        once per key."""
        check_raised(kind, message, source_key)
        data = {"userId": user_id, "message": message}
        async with self._db.transaction() as conn:
            return await self._store.raise_alert(conn, user_id, kind, message, source_key, data)

    async def pending_topups(self, limit: int) -> Sequence[Crossing]:
        async with self._db.autocommit() as conn:
            return await self._store.pending_topups(conn, max(1, min(limit or 50, 500)))

    async def finish_topup(self, crossing_id: int) -> None:
        async with self._db.autocommit() as conn:
            await self._store.finish_topup(conn, crossing_id)

    async def warn_expiring(self, within_hours: int, limit: int) -> int:
        if not 1 <= within_hours <= 24 * 365:
            raise InvalidInput("withinHours must be between 1 and 8760")
        async with self._db.transaction() as conn:
            return await self._store.warn_expiring(conn, within_hours, max(1, min(limit, 10_000)))
