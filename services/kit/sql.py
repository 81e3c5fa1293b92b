"""Statements with `:name` parameters on a psycopg connection: the small part of SQLAlchemy Core
the stores used (every statement was textual), without SQLAlchemy in the serving process.

Why not SQLAlchemy (docs/DECISIONS.md 115): its async engine costs ~170 µs of CPU per statement
against psycopg's ~45 and ~17 MiB of every process's idle memory, for `text()` and a result API.
Here a statement's `:name` parameters become psycopg's `%(name)s` once per distinct statement
(the rule SQLAlchemy's `text()` applies: a colon not after another colon, a word character or a
backslash, and a name not followed by a colon, so `::jsonb` casts stay casts), and a result is the
statement's rows fetched at once, as SQLAlchemy buffers them."""

from __future__ import annotations

import re
from collections import namedtuple
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import Any, TypeAlias

import psycopg
from psycopg.rows import RowMaker

# A row: a named tuple whose fields are the statement's column names (`row.user_id`, `row[0]`,
# `row._asdict()`); its class is made per statement's columns, so it has no static type.
Row: TypeAlias = Any

# SQLAlchemy's own patterns (sqlalchemy.sql.elements.TextClause, sqlalchemy.sql.compiler).
_PARAMETER = re.compile(r"(?<![:\w\\]):(\w+)(?![:\w])")
_ESCAPED_COLON = re.compile(r"\\(:\w*)(?![:\w])")
_NONE: Mapping[str, Any] = {}


class NoRow(LookupError):
    """`one()` or `scalar_one()` found no row, or more than one."""


class Statement:
    """A statement's text in psycopg's placeholders (`text()` makes one)."""

    __slots__ = ("sql",)

    def __init__(self, source: str) -> None:
        # psycopg reads `%` as a placeholder's start: a literal one (modulo, LIKE) is doubled.
        escaped = source.replace("%", "%%")
        self.sql = _ESCAPED_COLON.sub(r"\1", _PARAMETER.sub(r"%(\1)s", escaped))

    def __repr__(self) -> str:
        return f"Statement({self.sql!r})"


@lru_cache(maxsize=1024)
def text(source: str) -> Statement:
    """The statement for `source` (converted once: stores build most statements inline)."""
    return Statement(source)


class Result:
    """A statement's rows, fetched as it ran, and its row count."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[Row], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def __iter__(self) -> Iterator[Row]:
        return iter(self._rows)

    def all(self) -> list[Row]:
        return self._rows

    fetchall = all

    def first(self) -> Row | None:
        return self._rows[0] if self._rows else None

    fetchone = first

    def one(self) -> Row:
        if len(self._rows) != 1:
            raise NoRow(f"expected one row, got {len(self._rows)}")
        return self._rows[0]

    def one_or_none(self) -> Row | None:
        if len(self._rows) > 1:
            raise NoRow(f"expected at most one row, got {len(self._rows)}")
        return self.first()

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None

    def scalar_one(self) -> Any:
        return self.one()[0]

    def scalar_one_or_none(self) -> Any:
        row = self.one_or_none()
        return None if row is None else row[0]


def _named_rows(cursor: psycopg.AsyncCursor[Any]) -> RowMaker[Row]:
    names = tuple(column.name for column in cursor.description or ())
    return _row_maker(names)


@lru_cache(maxsize=1024)
def _row_maker(names: Sequence[str]) -> RowMaker[Row]:
    # rename: a repeated or non-identifier column name (two `coalesce(...)`) becomes `_<index>`,
    # read by position, as SQLAlchemy's rows allowed.
    row: Any = namedtuple("Row", names, rename=True)  # type: ignore[misc]
    maker: RowMaker[Row] = row._make
    return maker


class Connection:
    """A pooled psycopg connection as the stores see it: `execute(text(...), {...})`."""

    __slots__ = ("raw",)

    def __init__(self, raw: psycopg.AsyncConnection[Any]) -> None:
        self.raw = raw

    async def execute(
        self, statement: Statement, params: Mapping[str, Any] | None = None
    ) -> Result:
        cursor = self.raw.cursor(row_factory=_named_rows)
        # Never None: psycopg sends a statement without parameters verbatim, `%%` included.
        await cursor.execute(statement.sql, _NONE if params is None else params)
        rows = await cursor.fetchall() if cursor.description is not None else []
        return Result(rows, cursor.rowcount)

    @asynccontextmanager
    async def begin_nested(self) -> AsyncIterator[Connection]:
        """A savepoint inside the connection's transaction: rolled back alone when the block
        raises."""
        async with self.raw.transaction():
            yield self
