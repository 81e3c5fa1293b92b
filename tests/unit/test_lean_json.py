"""The task service's JSON reader (services.kit.db.fast_json_loads) reads every document as the standard
library does, except that integers beyond 64 bits come back as the nearest double: orjson where it
can, the standard library where orjson refuses."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.kit.db import fast_json_loads

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
SCALARS = (
    st.none() | st.booleans() | INT64 | st.floats(allow_nan=False, allow_infinity=False) | TEXT
)
DOCUMENTS = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(TEXT, inner, max_size=5),
    max_leaves=30,
)


@given(DOCUMENTS)
def test_reads_what_the_standard_library_reads(document: Any) -> None:
    text = json.dumps(document)
    assert fast_json_loads(text.encode()) == json.loads(text)
    assert fast_json_loads(text) == json.loads(text)


def test_integers_beyond_64_bits_keep_their_value_as_numbers() -> None:
    # orjson reads them as floats; a Struct holds every number as a double anyway.
    assert fast_json_loads(b'{"n": 18446744073709551616}') == {"n": 18446744073709551616}


def test_numbers_beyond_a_double_fall_back_to_the_standard_library() -> None:
    text = '{"n": 1' + "0" * 400 + "}"
    assert fast_json_loads(text.encode()) == {"n": 10**400}


def test_invalid_json_is_still_an_error() -> None:
    with pytest.raises(json.JSONDecodeError):
        fast_json_loads(b"{")
