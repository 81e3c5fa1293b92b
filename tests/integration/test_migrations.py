from __future__ import annotations

import asyncio

import psycopg

from services.kit.db import SCHEMAS
from services.kit.migrate import upgrade, upgrade_all
from tests.support.cluster import make_settings


def _versions(url: str) -> dict[str, list[str]]:
    out = {}
    with psycopg.connect(url) as conn:
        for schema in SCHEMAS.values():
            rows = conn.execute(f'SELECT version_num FROM "{schema}".alembic_version').fetchall()
            out[schema] = sorted(r[0] for r in rows)
    return out


def test_migrations_run_from_empty_and_rerun_is_a_no_op(fresh_database: str) -> None:
    settings = make_settings(fresh_database)
    upgrade_all(settings)
    first = _versions(fresh_database)
    with psycopg.connect(fresh_database) as conn:
        schemas = {
            r[0] for r in conn.execute("SELECT schema_name FROM information_schema.schemata")
        }
        plans = conn.execute("SELECT count(*) FROM billing.plans").fetchone()
    assert set(SCHEMAS.values()) <= schemas
    assert plans == (3,)

    upgrade_all(settings)
    assert _versions(fresh_database) == first
    with psycopg.connect(fresh_database) as conn:
        assert conn.execute("SELECT count(*) FROM billing.plans").fetchone() == (3,)


async def test_concurrent_migrations_serialize(fresh_database: str) -> None:
    settings = make_settings(fresh_database)
    await asyncio.gather(*(asyncio.to_thread(upgrade, "billing", settings) for _ in range(4)))
    with psycopg.connect(fresh_database) as conn:
        assert conn.execute("SELECT count(*) FROM billing.plans").fetchone() == (3,)
