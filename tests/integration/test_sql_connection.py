"""Statements through services.kit.db and services.kit.sql on a real PostgreSQL: what the stores
rely on from a result (named rows, repeated column names, row counts), literal percent signs with
and without parameters, a savepoint that rolls back alone, and a transaction that rolls back whole."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import psycopg
import pytest

from services.kit.db import Database
from services.kit.sql import Connection, text
from tests.support.cluster import make_settings


@pytest.fixture
async def db(fresh_database: str) -> AsyncIterator[Database]:
    database = Database(make_settings(fresh_database), pool_size=2)
    async with database.autocommit() as conn:
        await conn.execute(text("CREATE TABLE IF NOT EXISTS public.kv (k text PRIMARY KEY, v int)"))
        await conn.execute(text("TRUNCATE public.kv"))
    try:
        yield database
    finally:
        await database.close()


async def test_rows_by_name_and_position(db: Database) -> None:
    async with db.autocommit() as conn:
        result = await conn.execute(
            text("SELECT CAST(:a AS int) AS a, coalesce(NULL, 1), coalesce(NULL, 2), 7 % 4 AS m"),
            {"a": 5},
        )
    row = result.one()
    assert row.a == 5
    assert tuple(row) == (5, 1, 2, 3)  # the repeated `coalesce` names are read by position
    assert row._asdict()["m"] == 3


async def test_percent_signs_without_parameters(db: Database) -> None:
    async with db.autocommit() as conn:
        assert (await conn.execute(text("SELECT 'a%' || (9 % 5)::text"))).scalar_one() == "a%4"


async def test_row_counts_and_savepoints(db: Database) -> None:
    async with db.transaction() as conn:
        for key in ("x", "y", "z"):
            await conn.execute(text("INSERT INTO public.kv VALUES (:k, 1)"), {"k": key})
        with pytest.raises(psycopg.errors.UniqueViolation):
            await _update_then_collide(conn)
        updated = await conn.execute(text("UPDATE public.kv SET v = v + 1 WHERE k <> 'z'"))
        assert updated.rowcount == 2
    async with db.autocommit() as conn:
        rows = (await conn.execute(text("SELECT k, v FROM public.kv ORDER BY k"))).all()
    assert [tuple(r) for r in rows] == [("x", 2), ("y", 2), ("z", 1)]


async def test_a_failed_transaction_leaves_nothing(db: Database) -> None:
    with pytest.raises(RuntimeError):
        await _insert_then_fail(db)
    async with db.autocommit() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM public.kv"))).scalar_one() == 0


async def _update_then_collide(conn: Connection) -> None:
    async with conn.begin_nested():
        await conn.execute(text("UPDATE public.kv SET v = 2"))
        await conn.execute(text("INSERT INTO public.kv VALUES ('x', 9)"))


async def _insert_then_fail(db: Database) -> None:
    async with db.transaction() as conn:
        await conn.execute(text("INSERT INTO public.kv VALUES ('w', 1)"))
        raise RuntimeError("the unit of work fails after its first statement")


async def test_after_a_server_restart_one_failure_replaces_every_broken_connection(
    fresh_database: str,
) -> None:
    db = Database(make_settings(fresh_database), pool_size=3)  # up to 6 connections
    try:
        # Six connections open and back in the pool, idle.
        await asyncio.gather(*(_sleep_on_a_connection(db) for _ in range(6)))
        async with await psycopg.AsyncConnection.connect(fresh_database, autocommit=True) as admin:
            # What a restart does to every connection the pool holds.
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        with pytest.raises(psycopg.OperationalError):
            await _sleep_on_a_connection(db)
        await asyncio.sleep(0.5)  # the check of the idle connections
        # Every later statement finds a working connection: none of the other five fails.
        for _ in range(12):
            await _sleep_on_a_connection(db, seconds=0)
    finally:
        await db.close()


async def _sleep_on_a_connection(db: Database, seconds: float = 0.05) -> None:
    async with db.autocommit() as conn:
        await conn.execute(text("SELECT pg_sleep(:s)"), {"s": seconds})
