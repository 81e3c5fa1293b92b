from __future__ import annotations

import pytest

from services.kit.errors import InvalidInput
from services.kit.pagination import MAX_POSITION, decode_cursor, encode_cursor, page_limit


def test_cursor_round_trip() -> None:
    for position in (0, 1, 42, 2**40, MAX_POSITION):
        assert decode_cursor(encode_cursor(position)) == position
    assert decode_cursor("") is None


@pytest.mark.parametrize(
    "cursor",
    [
        "%%%",
        "djI6MTA",
        "djE6LTE",
        "djE6eA",
        # Positions are bigint keys: beyond that a cursor used to reach the SQL and answer 500.
        encode_cursor(MAX_POSITION + 1),
        encode_cursor(10**40),
        "djE6ICAx",  # "v1:  1": int() would take the spaces
        "djE6MV8w",  # "v1:1_0": and underscores
        "é",
        "x" * 65,
    ],
)
def test_foreign_cursors_are_refused(cursor: str) -> None:
    with pytest.raises(InvalidInput):
        decode_cursor(cursor)


def test_limits() -> None:
    assert page_limit(0) == 20
    assert page_limit(100) == 100
    for bad in (-1, 101):
        with pytest.raises(InvalidInput):
            page_limit(bad)
