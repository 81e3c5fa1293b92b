"""The Task message a reply carries says what the domain Task says (filled in place)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from services.kit.proto_time import from_timestamp
from services.kit.validation import json_value
from services.task.api import fill_task, task_to_proto
from services.task.domain import ChargeState, Status, Task
from studiox.task.v1 import task_pb2

# What the boundary lets in (kit/validation): no NUL, no surrogates. Struct numbers are doubles:
# floats round-trip exactly, as JSON numbers do.
_text = st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), max_size=20)
_scalars = st.none() | st.booleans() | _text | st.floats(allow_nan=False, allow_infinity=False)
_json = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8,
)
_objects = st.dictionaries(_text, _json, max_size=4)
_moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@st.composite
def tasks(draw: st.DrawFn) -> Task:
    created = draw(_moments)
    return Task(
        id=uuid.UUID(int=draw(st.integers(0, 2**128 - 1))),
        seq=draw(st.integers(1, 2**40)),
        user_id=draw(st.text(min_size=1, max_size=30)),
        type=draw(st.sampled_from(["image_analysis", "video_generation"])),
        status=draw(st.sampled_from(list(Status))),
        input_data=draw(_objects),
        output_data=draw(st.none() | _objects),
        error=draw(st.none() | st.text(max_size=30)),
        credits_cost=draw(st.integers(0, 10_000)),
        charge_state=draw(st.sampled_from(list(ChargeState))),
        created_at=created,
        updated_at=created + draw(st.timedeltas(timedelta(0), timedelta(days=30))),
        completed_at=draw(st.none() | st.just(created + timedelta(seconds=5))),
        credits_reserved=draw(st.integers(0, 10_000)),
        usage=draw(st.none() | st.dictionaries(st.text(max_size=8), st.floats(0, 1e6), max_size=3)),
        credits_uncharged=draw(st.integers(0, 100)),
    )


@given(tasks())
def test_a_task_message_says_what_the_task_says(task: Task) -> None:
    message = task_to_proto(task)
    assert message.id == str(task.id)
    assert message.user_id == task.user_id
    assert message.status == task.status.value
    assert json_value(message.input_data) == task.input_data
    assert message.HasField("input_data")  # present even when empty
    assert message.HasField("output_data") == (task.output_data is not None)
    if task.output_data is not None:
        assert json_value(message.output_data) == task.output_data
    assert message.error == (task.error or "")
    assert from_timestamp(message.created_at) == task.created_at
    assert from_timestamp(message.updated_at) == task.updated_at
    assert message.HasField("completed_at") == (task.completed_at is not None)
    if task.completed_at is not None:
        assert from_timestamp(message.completed_at) == task.completed_at
    assert message.credits_reserved == (task.credits_reserved or task.credits_cost)
    assert dict(message.usage) == (task.usage or {})
    assert message.credits_uncharged == task.credits_uncharged


@given(st.lists(tasks(), max_size=5))
def test_a_page_filled_in_place_equals_messages_built_apart(page: list[Task]) -> None:
    reply = task_pb2.ListTasksResponse()
    for task in page:
        fill_task(reply.tasks.add(), task)
    assert list(reply.tasks) == [task_to_proto(t) for t in page]
