"""services.kit.sql.text reads a statement's parameters as SQLAlchemy's `text()` did (the stores'
statements were written for it): compared with SQLAlchemy's own compilation for the psycopg
dialect over generated statements, casts, escaped colons and literal percent signs included."""

from __future__ import annotations

import pytest
import sqlalchemy
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects.postgresql import psycopg as pg_dialect

from services.kit.sql import NoRow, Result, Statement, text

DIALECT = pg_dialect.dialect()  # type: ignore[no-untyped-call]
FRAGMENTS = st.sampled_from(
    [":a", ":user_id", "::jsonb", "::int", "%", "%%", "\\:", ":", "x", "_", " ", "'", "(", ")",
     "1", "é", ":b:c", "a:b", ",", "\n"]
)  # fmt: skip


def sqlalchemy_compiled(source: str) -> str:
    return str(sqlalchemy.text(source).compile(dialect=DIALECT))


@settings(max_examples=500)
@given(st.lists(FRAGMENTS, max_size=30).map("".join))
def test_parameters_and_percent_signs_as_sqlalchemy_compiles_them(source: str) -> None:
    assert Statement(source).sql == sqlalchemy_compiled(source)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("SELECT * FROM t WHERE id = :id", "SELECT * FROM t WHERE id = %(id)s"),
        (
            "SELECT CAST(:doc AS jsonb), (:doc)::jsonb",
            "SELECT CAST(%(doc)s AS jsonb), (%(doc)s)::jsonb",
        ),
        ("SELECT x % 2 FROM t WHERE s LIKE 'a%'", "SELECT x %% 2 FROM t WHERE s LIKE 'a%%'"),
        ("SELECT '\\:literal'", "SELECT ':literal'"),
    ],
)
def test_known_statements(source: str, expected: str) -> None:
    assert text(source).sql == expected
    assert sqlalchemy_compiled(source) == expected


def test_a_statement_is_converted_once() -> None:
    assert text("SELECT :x") is text("SELECT :x")


def test_result_reads_rows_as_sqlalchemy_results_did() -> None:
    rows = [(1, "a"), (2, "b")]
    result = Result(list(rows), 2)
    assert result.all() == rows
    assert list(result) == rows
    assert result.fetchall() == rows
    assert result.first() == (1, "a")
    assert result.fetchone() == (1, "a")
    assert result.scalar() == 1
    with pytest.raises(NoRow):
        result.one()
    with pytest.raises(NoRow):
        result.scalar_one_or_none()
    one = Result([(7,)], 1)
    assert one.one() == (7,)
    assert one.scalar_one() == 7
    assert one.one_or_none() == (7,)
    empty = Result([], 0)
    assert empty.first() is None
    assert empty.scalar() is None
    assert empty.one_or_none() is None
    assert empty.scalar_one_or_none() is None
    with pytest.raises(NoRow):
        empty.scalar_one()
