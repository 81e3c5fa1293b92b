"""Two ways to the service's schema: the async SQLAlchemy engine (Core only: one connection, one
transaction, per unit of work) for everything, and a lean psycopg pool for the few single-statement
hot paths (a credits read, a task list, the statements of a create).

Why two (docs/DECISIONS.md, issue 17): through SQLAlchemy's async layer one statement costs
~170 µs of CPU (greenlet bridge, compiled-cache lookup, result metadata); the same statement on a
psycopg connection, prepared server-side once per connection, ~45 µs. The lean pool's connections
are in autocommit mode: each statement is its own transaction, so only single-statement units of
work belong there."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, cast

import orjson
import psycopg
from psycopg.types.json import set_json_loads
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import text
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    create_async_engine,
)

from services.kit import tracing
from services.kit.settings import ServiceName, Settings

# How long a lean statement waits for a pooled connection before the call fails as unavailable.
LEAN_CHECKOUT_SECONDS = 5.0
Params = Sequence[Any] | Mapping[str, Any]

# Each service owns one PostgreSQL schema; `user` is a reserved word, hence the plurals.
SCHEMAS: dict[ServiceName, str] = {
    "user": "users",
    "credit": "credit",
    "task": "tasks",
    "billing": "billing",
    "scheduler": "scheduler",
}


class Database:
    def __init__(self, settings: Settings, *, pool_size: int | None = None) -> None:
        size = max(pool_size or settings.db_pool_size, 2)
        # At most 2 x DB_POOL_SIZE connections per process (docs/DEPLOY.md): the engine keeps
        # half of `size` and may overflow to `size`; the lean pool holds up to `size` and keeps
        # them (connections opened and closed per burst cost more than the statements they run).
        self.engine: AsyncEngine = create_async_engine(
            settings.sqlalchemy_url,
            pool_size=size // 2,
            max_overflow=size - size // 2,
            # No ping per checkout (a round trip on every request): after a database restart the
            # first failing statement invalidates the whole pool and later ones reconnect.
            pool_pre_ping=False,
            pool_recycle=1800,
            # Calendar arithmetic in SQL (monthly resets) must agree with Python's UTC datetimes.
            connect_args={"options": "-c TimeZone=UTC"},
        )
        tracing.instrument_engine(self.engine)  # statements as spans, when tracing is configured
        self._pool = AsyncConnectionPool(
            settings.libpq_url,
            min_size=2,
            max_size=size,
            # prepare_threshold=0: every statement is prepared on its first use on a connection,
            # so later executions skip PostgreSQL's parse and plan (the lean path runs a handful of
            # fixed statements). Needs a session-mode connection (not a transaction pooler).
            kwargs={"autocommit": True, "prepare_threshold": 0, "options": "-c TimeZone=UTC"},
            configure=_configure_lean,
            timeout=LEAN_CHECKOUT_SECONDS,
            open=False,
        )
        self._pool_open = False
        self._opening = asyncio.Lock()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A Core connection inside one transaction (committed at the end, rolled back on error)."""
        async with self.engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncConnection]:
        """A connection where each statement is its own transaction: for units of work that are a
        single statement, saving the BEGIN/COMMIT round trips."""
        async with self.engine.connect() as conn:
            yield await conn.execution_options(isolation_level="AUTOCOMMIT")

    @asynccontextmanager
    async def lean(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pooled psycopg connection in autocommit mode (see the module's docstring)."""
        pool = self._pool if self._pool_open else await self._open_pool()
        async with pool.connection() as conn:
            yield cast(psycopg.AsyncConnection[Any], _Traced(conn)) if tracing.active() else conn

    async def _open_pool(self) -> AsyncConnectionPool:
        async with self._opening:
            if not self._pool_open:
                # Connections are made in the background; the first checkout waits for one.
                await self._pool.open(wait=False)
                self._pool_open = True
        return self._pool

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        async with self.lean() as conn:
            await conn.execute("SELECT 1")

    async def close(self) -> None:
        if self._pool_open:
            await self._pool.close()
        await self.engine.dispose()


async def _configure_lean(conn: psycopg.AsyncConnection[Any]) -> None:
    set_json_loads(_json_loads, conn)


def _json_loads(data: bytes | str) -> Any:
    """json and jsonb columns on the lean path. orjson parses a task's small documents ~8 times
    faster than the standard library (a 21-row list page's fetch: 209 → 140 µs of CPU,
    docs/PERFORMANCE.md). It reads integers beyond 64 bits as floats (Struct numbers are doubles
    either way) and refuses numbers beyond a double's range, which jsonb can hold: those
    documents get the standard library's reading."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


class _Traced:
    """A lean connection (or one of its cursors) whose statements are spans (what SQLAlchemy's
    instrumentation does for the engine), used only while tracing is on."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    async def execute(self, statement: str, params: Params | None = None) -> Any:
        with tracing.sql_span(statement):
            return await self._conn.execute(statement, params)

    def cursor(self, *args: Any, **kwargs: Any) -> Any:
        return _Traced(self._conn.cursor(*args, **kwargs))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)
