"""Keyset pagination shared by list endpoints: bounded limits and opaque cursors."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import TypeVar

from services.kit.errors import InvalidInput

T = TypeVar("T")

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
# Positions are PostgreSQL bigint keys; a cursor beyond that is not one we issued.
MAX_POSITION = 2**63 - 1
# Our cursors are ~16-36 characters; anything much longer is refused before decoding.
MAX_CURSOR_LENGTH = 64


def page_limit(requested: int, *, default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT) -> int:
    """0 (absent) means the default; anything outside 1..maximum is refused."""
    if requested == 0:
        return default
    if not 1 <= requested <= maximum:
        raise InvalidInput(f"limit must be between 1 and {maximum}")
    return requested


def encode_cursor(position: int) -> str:
    return base64.urlsafe_b64encode(f"v1:{position}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int | None:
    """None for no cursor; InvalidInput for one we did not issue."""
    if not cursor:
        return None
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise InvalidInput("cursor is invalid")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeError, ValueError):
        raise InvalidInput("cursor is invalid") from None
    version, _, value = raw.partition(":")
    # Digits only: int() would also take signs, spaces, underscores and non-ASCII digits.
    if version != "v1" or not value.isascii() or not value.isdigit():
        raise InvalidInput("cursor is invalid")
    position = int(value)
    if position > MAX_POSITION:
        raise InvalidInput("cursor is invalid")
    return position


def page_and_cursor(
    rows: Sequence[T], limit: int, position: Callable[[T], int]
) -> tuple[list[T], str]:
    """Rows fetched with `limit + 1`: the extra row only tells that another page follows, and the
    cursor then points after the page's last row."""
    page = list(rows[:limit])
    return page, encode_cursor(position(page[-1])) if len(rows) > limit else ""
