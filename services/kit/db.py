"""The service's schema through one psycopg pool: a unit of work is one transaction on one pooled
connection (`transaction()`), a single statement may run as its own (`autocommit()`), and the
hottest single statements use the connection directly (`lean()`: psycopg's own API, `%s`
placeholders, binary results).

Why psycopg alone (docs/DECISIONS.md 115, issue 17): through SQLAlchemy's async engine one
statement cost ~170 µs of CPU (greenlet bridge, compiled-cache lookup, result metadata) against
~45 µs on psycopg, and SQLAlchemy was ~17 MiB of every process's idle memory; every statement was
textual, so services.kit.sql keeps the stores' `text(...)` with `:name` parameters. Connections
are in autocommit mode (a transaction is an explicit BEGIN/COMMIT around its block) and prepare
every statement on its first use, so later executions skip PostgreSQL's parse and plan; that
needs a session-mode connection (not a transaction pooler)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, cast

import orjson
import psycopg
from psycopg.types.json import set_json_loads
from psycopg_pool import AsyncConnectionPool

from services.kit import tracing
from services.kit.settings import ServiceName, Settings
from services.kit.sql import Connection, text

# How long a unit of work waits for a pooled connection before the call fails as unavailable.
CHECKOUT_SECONDS = 5.0

# What PostgreSQL raises when it refuses a statement for a value it carries (a check or unique
# constraint, a number out of range, text it cannot parse), as opposed to a connection or server
# failure (psycopg.OperationalError, which the pool's own timeout is too).
VALUE_REFUSALS: tuple[type[Exception], ...] = (psycopg.DataError, psycopg.IntegrityError)

Params = Sequence[Any] | Mapping[str, Any]
JsonLoads = Callable[[bytes | str], Any]

# Each service owns one PostgreSQL schema; `user` is a reserved word, hence the plurals.
SCHEMAS: dict[ServiceName, str] = {
    "user": "users",
    "credit": "credit",
    "task": "tasks",
    "billing": "billing",
    "scheduler": "scheduler",
}


class Database:
    def __init__(
        self,
        settings: Settings,
        *,
        pool_size: int | None = None,
        json_loads: JsonLoads | None = None,
    ) -> None:
        size = max(pool_size or settings.db_pool_size, 2)
        self._json_loads = json_loads
        # At most 2 x DB_POOL_SIZE connections per process (docs/DEPLOY.md), the budget the two
        # pools this replaced shared; the pool keeps them (connections opened and closed per burst
        # cost more than the statements they run).
        self._pool = AsyncConnectionPool(
            settings.libpq_url,
            min_size=2,
            max_size=2 * size,
            # prepare_threshold=0: prepared on first use (a service runs a fixed set of statements).
            # TimeZone: calendar arithmetic in SQL (monthly resets) must agree with Python's UTC.
            kwargs={"autocommit": True, "prepare_threshold": 0, "options": "-c TimeZone=UTC"},
            configure=self._configure,
            timeout=CHECKOUT_SECONDS,
            # A pooled connection is not pinged per checkout (a round trip on every request):
            # a statement that finds its connection broken discards it and has the idle ones
            # checked (_check_idle).
            open=False,
        )
        self._pool_open = False
        self._opening = asyncio.Lock()
        self._checking: asyncio.Task[None] | None = None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        """A connection inside one transaction (committed at the end, rolled back on error)."""
        async with self._connection() as conn, conn.transaction():
            yield Connection(conn)

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[Connection]:
        """A connection where each statement is its own transaction: for units of work that are a
        single statement, saving the BEGIN/COMMIT round trips."""
        async with self._connection() as conn:
            yield Connection(conn)

    @asynccontextmanager
    async def lean(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pooled psycopg connection in autocommit mode, for psycopg's own API (binary
        results, `%s` placeholders) on the hottest statements."""
        async with self._connection() as conn:
            yield conn

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pooled connection; while tracing is on, one whose every statement is a span, for
        all three ways in (services.kit.sql's statements and the lean path's alike)."""
        pool = self._pool if self._pool_open else await self._open_pool()
        async with pool.connection() as conn:
            try:
                yield (
                    cast(psycopg.AsyncConnection[Any], _Traced(conn)) if tracing.active() else conn
                )
            except psycopg.OperationalError:
                if conn.broken:
                    self._check_idle()
                raise

    def _check_idle(self) -> None:
        """A server restart breaks every pooled connection at once: the idle ones are checked
        (and the broken replaced) in the background now, instead of failing one request each."""
        if self._checking is None or self._checking.done():
            self._checking = asyncio.get_running_loop().create_task(self._pool.check())

    async def _open_pool(self) -> AsyncConnectionPool:
        async with self._opening:
            if not self._pool_open:
                # Connections are made in the background; the first checkout waits for one.
                await self._pool.open(wait=False)
                self._pool_open = True
        return self._pool

    async def _configure(self, conn: psycopg.AsyncConnection[Any]) -> None:
        if self._json_loads is not None:
            set_json_loads(self._json_loads, conn)

    async def ping(self) -> None:
        async with self.autocommit() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        if self._checking is not None:
            self._checking.cancel()
        if self._pool_open:
            await self._pool.close()


def fast_json_loads(data: bytes | str) -> Any:
    """json and jsonb columns of a service whose documents become protobuf Structs (the task
    service). orjson parses a task's small documents ~8 times faster than the standard library
    (a 21-row list page's fetch: 209 → 140 µs of CPU, docs/PERFORMANCE.md). It reads integers
    beyond 64 bits as floats (a Struct's numbers are doubles either way: elsewhere that would lose
    digits, hence the standard library's reading by default) and refuses numbers beyond a
    double's range, which jsonb can hold: those documents get the standard library's reading."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


class _Traced:
    """A connection (or one of its cursors) whose statements are spans, used only while tracing
    is on; everything else, and every argument of `execute` (`binary=True` of a list page),
    passes through."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    async def execute(self, statement: str, params: Params | None = None, **options: Any) -> Any:
        with tracing.sql_span(statement):
            return await self._conn.execute(statement, params, **options)

    def cursor(self, *args: Any, **kwargs: Any) -> Any:
        return _Traced(self._conn.cursor(*args, **kwargs))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)
