from __future__ import annotations

import pytest

from services.kit.errors import InvalidInput
from services.kit.pagination import decode_cursor, encode_cursor, page_limit


def test_cursor_round_trip() -> None:
    for position in (0, 1, 42, 2**40):
        assert decode_cursor(encode_cursor(position)) == position
    assert decode_cursor("") is None


@pytest.mark.parametrize("cursor", ["%%%", "djI6MTA", "djE6LTE", "djE6eA"])
def test_foreign_cursors_are_refused(cursor: str) -> None:
    with pytest.raises(InvalidInput):
        decode_cursor(cursor)


def test_limits() -> None:
    assert page_limit(0) == 20
    assert page_limit(100) == 100
    for bad in (-1, 101):
        with pytest.raises(InvalidInput):
            page_limit(bad)
