"""Async SQLAlchemy engine and sessions: one session, one transaction, per unit of work."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

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
            pool_pre_ping=True,
            pool_recycle=1800,
        )
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed when the block ends, rolled back on error."""
        async with self._sessions() as session, session.begin():
            yield session

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        await self.engine.dispose()
