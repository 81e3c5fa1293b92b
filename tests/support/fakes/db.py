"""A Database that opens no connection: `transaction()` is all or nothing over the fake stores it
tracks (their state is put back when the block raises), `autocommit()` and `lean()` keep every write at once,
and `begin_nested()` on its connection is a savepoint. Statements themselves are the fake stores'
business; the connection object only carries the transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol, cast

from psycopg import AsyncConnection as LeanConnection

from services.kit.db import Database
from services.kit.sql import Connection


class Transactional(Protocol):
    """A fake store whose state a rollback puts back."""

    def snapshot(self) -> Any: ...

    def restore(self, state: Any) -> None: ...


class FakeConnection:
    def __init__(self, db: FakeDatabase) -> None:
        self._db = db

    @asynccontextmanager
    async def begin_nested(self) -> AsyncIterator[FakeConnection]:
        async with self._db.atomic():
            yield self


class FakeDatabase(Database):
    # Deliberately no super().__init__(): there is no engine. Concurrent transactions are not
    # isolated from each other (a rollback restores the whole store); unit tests run one at a time.
    def __init__(self, *stores: Transactional) -> None:
        self._stores = list(stores)
        self.open_transactions = 0
        self.rollbacks = 0

    @asynccontextmanager
    async def atomic(self) -> AsyncIterator[None]:
        saved = [store.snapshot() for store in self._stores]
        self.open_transactions += 1
        try:
            yield
        except BaseException:
            for store, state in zip(self._stores, saved, strict=True):
                store.restore(state)
            self.rollbacks += 1
            raise
        finally:
            self.open_transactions -= 1

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        async with self.atomic():
            yield cast(Connection, FakeConnection(self))

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[Connection]:
        yield cast(Connection, FakeConnection(self))

    @asynccontextmanager
    async def lean(self) -> AsyncIterator[LeanConnection[Any]]:
        yield cast(LeanConnection[Any], FakeConnection(self))

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None
