"""JSON and jsonb columns read on the lean path (services.kit.db) come back as the standard
library reads PostgreSQL's text of them, numbers beyond a double's range included (2**64, beyond
64 bits, is a double exactly, so it compares equal either way)."""

from __future__ import annotations

import json

from services.kit.db import Database
from tests.support.cluster import make_settings

DOCUMENT = (
    '{"text": "naïve ☃", "list": [1, -2.5, true, null, {"deep": ["x"]}], '
    '"wide": 18446744073709551616, "huge": 1' + "0" * 400 + "}"
)


async def test_lean_reads_json_as_the_standard_library_does(fresh_database: str) -> None:
    db = Database(make_settings(fresh_database), pool_size=2)
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
