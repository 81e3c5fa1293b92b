"""services/task/documents.py: the stored encodings, concatenated, are the documents."""

from __future__ import annotations

import math
from typing import Any

from google.protobuf import json_format
from hypothesis import given
from hypothesis import strategies as st

from services.task.documents import (
    as_stored,
    encode_input,
    encode_output,
    encode_usage,
    set_documents,
)
from studiox.task.v1 import task_pb2

_JSON = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)
_OBJECT = st.dictionaries(st.text(), _JSON, max_size=4)


@given(
    input_data=_OBJECT,
    output=st.none() | _OBJECT,
    usage=st.dictionaries(st.text(), st.floats(0, 1e9), max_size=3),
)
def test_the_three_encodings_concatenated_are_the_documents(
    input_data: dict[str, Any], output: dict[str, Any] | None, usage: dict[str, float]
) -> None:
    merged = task_pb2.Task.FromString(
        encode_input(input_data) + (encode_output(output) or b"") + encode_usage(usage)
    )
    expected = task_pb2.Task()
    set_documents(expected, as_stored(input_data), as_stored(output), as_stored(usage))
    assert merged == expected


def test_empty_documents_keep_their_presence() -> None:
    merged = task_pb2.Task.FromString(encode_input({}) + (encode_output({}) or b""))
    assert merged.HasField("input_data")
    assert merged.HasField("output_data")
    assert encode_output(None) is None
    assert encode_usage({}) == b""


def test_negative_zero_is_stored_as_zero() -> None:
    """jsonb keeps no negative zero: an encoding that did would show -0 where a read shows 0."""
    stored = task_pb2.Task.FromString(encode_input({"a": [-0.0, {"b": -0.0}], "c": 0.5}))
    assert json_format.MessageToJson(stored.input_data, indent=None, sort_keys=True) == (
        '{"a": [0.0, {"b": 0.0}], "c": 0.5}'
    )
    assert math.copysign(1, task_pb2.Task.FromString(encode_usage({"s": -0.0})).usage["s"]) == 1
