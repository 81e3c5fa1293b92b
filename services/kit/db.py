"""The async SQLAlchemy engine (Core only): one connection, one transaction, per unit of work."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    create_async_engine,
)

from services.kit import tracing
from services.kit.settings import ServiceName, Settings

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
        size = pool_size or settings.db_pool_size
        self.engine: AsyncEngine = create_async_engine(
            settings.sqlalchemy_url,
            pool_size=size,
            max_overflow=size,
            # No ping per checkout (a round trip on every request): after a database restart the
            # first failing statement invalidates the whole pool and later ones reconnect.
            pool_pre_ping=False,
            pool_recycle=1800,
            # Calendar arithmetic in SQL (monthly resets) must agree with Python's UTC datetimes.
            connect_args={"options": "-c TimeZone=UTC"},
        )
        tracing.instrument_engine(self.engine)  # statements as spans, when tracing is configured

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

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        await self.engine.dispose()
