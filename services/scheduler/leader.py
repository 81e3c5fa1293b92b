"""One active scheduler among any number of replicas: a session-level PostgreSQL advisory lock on a
connection held for as long as the replica leads. If the leader dies, PostgreSQL ends its session
and frees the lock, and a follower's next attempt takes over."""

from __future__ import annotations

import contextlib
import logging

import psycopg

log = logging.getLogger("studiox.scheduler.leader")

# Arbitrary but fixed: the lock every replica competes for.
LOCK_KEY = 0x5354_5544_494F_58  # "STUDIOX"
CONNECT_TIMEOUT_SECONDS = 3


class LeaderLock:
    def __init__(self, url: str) -> None:
        self._url = url
        self._conn: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        self.held = False

    async def try_acquire(self) -> bool:
        try:
            if self._conn is None or self._conn.closed:
                self._conn = await psycopg.AsyncConnection.connect(
                    self._url,
                    autocommit=True,
                    connect_timeout=CONNECT_TIMEOUT_SECONDS,
                    application_name="studiox-scheduler-leader",
                )
            row = await (
                await self._conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,))
            ).fetchone()
            self.held = bool(row and row[0])
        except psycopg.Error as exc:
            log.warning("leader lock unavailable: %s", exc)
            await self._drop()
        return self.held

    async def still_held(self) -> bool:
        """False once the lock's connection is gone (then the lock is gone with it)."""
        if not self.held or self._conn is None:
            return False
        try:
            await self._conn.execute("SELECT 1")
        except psycopg.Error as exc:
            log.warning("lost the leader lock's connection: %s", exc)
            await self._drop()
        return self.held

    async def release(self) -> None:
        if self._conn is not None and self.held:
            with contextlib.suppress(psycopg.Error):
                await self._conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
        await self._drop()

    async def _drop(self) -> None:
        self.held = False
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                await self._conn.close()
        self._conn = None
