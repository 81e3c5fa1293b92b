"""JSON and jsonb columns read with the task service's reader (services.kit.db.fast_json_loads)
come back as the standard library reads PostgreSQL's text of them, numbers beyond a double's range
included (2**64, beyond 64 bits, is a double exactly, so it compares equal either way); every
other service reads them with the standard library, integers of any width exactly."""

from __future__ import annotations

import json

from services.kit.db import Database, fast_json_loads
from services.kit.sql import text
from tests.support.cluster import make_settings

DOCUMENT = (
    '{"text": "naïve ☃", "list": [1, -2.5, true, null, {"deep": ["x"]}], '
    '"wide": 18446744073709551616, "huge": 1' + "0" * 400 + "}"
)


async def test_lean_reads_json_as_the_standard_library_does(fresh_database: str) -> None:
    db = Database(make_settings(fresh_database), pool_size=2, json_loads=fast_json_loads)
    try:
        async with db.lean() as conn:
            cursor = await conn.execute(
                "SELECT %(doc)s::jsonb, (%(doc)s::jsonb)::text, %(doc)s::json", {"doc": DOCUMENT}
            )
            row = await cursor.fetchone()
    finally:
        await db.close()
    assert row is not None
    read_jsonb, text_of_jsonb, read_json = row
    assert read_jsonb == json.loads(text_of_jsonb)
    assert read_json == json.loads(DOCUMENT)
    assert read_json["huge"] == 10**400


async def test_other_services_read_wide_integers_exactly(fresh_database: str) -> None:
    db = Database(make_settings(fresh_database), pool_size=2)
    wide = 123456789012345678901234567890
    try:
        async with db.transaction() as conn:
            row = (
                await conn.execute(text("SELECT (:doc)::jsonb AS doc"), {"doc": f'{{"n": {wide}}}'})
            ).one()
    finally:
        await db.close()
    assert row.doc == {"n": wide}
