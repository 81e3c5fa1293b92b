"""The boundary check every RPC passes (services/kit/validation.py), on generated messages."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import struct_pb2

from services.kit import validation
from services.kit.errors import DomainError, InvalidInput, PayloadTooLarge
from studiox.credit.v1 import credit_pb2
from studiox.task.v1 import task_pb2
from studiox.user.v1 import user_pb2


def nested(levels: int, *, lists: bool = False) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = [value] if lists else {"a": value}
    return value


def create(input_data: dict[str, Any] | None = None, **fields: Any) -> task_pb2.CreateTaskRequest:
    message = task_pb2.CreateTaskRequest(**{"type": "image_analysis", **fields})
    if input_data is not None:
        message.input_data.update(input_data)
    return message


def refusal(request: Any) -> DomainError:
    with pytest.raises(DomainError) as caught:
        validation.check_request(request)
    return caught.value


def test_ordinary_requests_pass() -> None:
    validation.check_request(create({"prompt": "a sunset", "n": [1, 2.5, None, True]}))
    validation.check_request(task_pb2.ListTasksRequest(status="pending", limit=100, cursor="abc"))
    validation.check_request(user_pb2.InitializeUserRequest(email="me@example.com", name="Me"))


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (create(type="image\x00analysis"), "type must not contain NUL characters"),
        (create({"k\x00": 1}), "inputData must not contain NUL characters"),
        (create({"k": ["ok", {"deep": "v\x00"}]}), "inputData must not contain NUL characters"),
        (create({"n": float("nan")}), "inputData must hold finite numbers only"),
        (create({"n": float("inf")}), "inputData must hold finite numbers only"),
        (create(type="x" * 1025), "type must be at most 1024 characters"),
        (user_pb2.InitializeUserRequest(email="e" * 255), "email must be at most 254 characters"),
        (
            user_pb2.InitializeUserRequest(email="a\x00@b.co"),
            "email must not contain NUL characters",
        ),
        (task_pb2.ListTasksRequest(limit=101), "limit must be between 0 and 100"),
        (task_pb2.ListTasksRequest(limit=-1), "limit must be between 0 and 100"),
        (task_pb2.UpdateStatusRequest(id="x", error="e\x00"), "error must not contain NUL"),
        (
            credit_pb2.SetPlanRequest(terms=credit_pb2.PlanTerms(plan_name="p\x00")),
            "terms.planName must not contain NUL characters",
        ),
        (
            credit_pb2.SetPlanRequest(terms=credit_pb2.PlanTerms(features=["ok", "x" * 2000])),
            "terms.features must be at most 1024 characters",
        ),
    ],
)
def test_refusals_name_the_field(request_: Any, message: str) -> None:
    error = refusal(request_)
    assert isinstance(error, InvalidInput)
    assert error.message.startswith(message)


def test_json_depth_bound_is_32_levels_of_objects_or_arrays() -> None:
    validation.check_request(create(nested(validation.MAX_JSON_DEPTH)))
    validation.check_request(create({"l": nested(validation.MAX_JSON_DEPTH - 1, lists=True)}))
    for too_deep in (
        nested(validation.MAX_JSON_DEPTH + 1),
        {"l": nested(validation.MAX_JSON_DEPTH, lists=True)},
    ):
        error = refusal(create(too_deep))
        assert error.message == "inputData must not be nested deeper than 32 levels"


def test_json_size_is_bounded_on_canonical_json() -> None:
    validation.check_request(create({"blob": "x" * (validation.MAX_JSON_BYTES - 20)}))
    error = refusal(create({"blob": "x" * validation.MAX_JSON_BYTES}))
    assert isinstance(error, PayloadTooLarge)
    assert error.message == f"inputData must be at most {validation.MAX_JSON_BYTES} bytes"


def test_worker_errors_may_be_long_as_declared_in_the_proto() -> None:
    validation.check_request(task_pb2.UpdateStatusRequest(id="x", error="e" * 60_000))
    assert refusal(task_pb2.UpdateStatusRequest(id="x", error="e" * 70_000)).message == (
        "error must be at most 65536 characters"
    )


def test_timestamps_out_of_range_are_refused() -> None:
    request = credit_pb2.ResetDueRequest()
    request.as_of.seconds = 2**40
    assert refusal(request).message == "asOf is out of range"


def test_map_keys_are_checked() -> None:
    assert refusal(task_pb2.TaskStats(by_type={"a\x00": 1})).message.startswith("byType")


# --- bytes the decoder refuses -------------------------------------------------------------------

decode = validation.tolerant(task_pb2.CreateTaskRequest.FromString)


def test_decodable_bytes_decode_as_usual() -> None:
    assert decode is not None
    request = decode(create({"a": 1}).SerializeToString())
    assert isinstance(request, task_pb2.CreateTaskRequest)
    assert request.input_data["a"] == 1


@pytest.mark.parametrize("levels", [34, 40, 60, 99])
def test_nesting_beyond_the_decoders_limit_is_a_400_naming_the_field(levels: int) -> None:
    # protobuf's decoder stops at 100 message levels (~33 JSON objects); Envoy's transcoder
    # accepts 99: everything between used to fail inside gRPC's deserializer as INTERNAL (500).
    assert decode is not None
    data = create(nested(levels)).SerializeToString()
    request = decode(data)
    assert isinstance(request, validation.Undecodable)
    error = refusal(request)
    assert isinstance(error, InvalidInput)
    assert error.message == "inputData must not be nested deeper than 32 levels"


def test_invalid_utf8_is_a_400_naming_the_field() -> None:
    assert decode is not None
    typed = create(type="tXY").SerializeToString().replace(b"tXY", b"t\xff(")
    assert refusal(decode(typed)).message == "type must be valid UTF-8"
    inner = create({"k": "vXY"}).SerializeToString().replace(b"vXY", b"v\xff(")
    assert refusal(decode(inner)).message == "inputData must be valid UTF-8"


def test_garbage_is_a_plain_400() -> None:
    assert decode is not None
    assert refusal(decode(b"\xff\xff\xff\xff")).message == "The request could not be read"


# --- helpers -------------------------------------------------------------------------------------


def test_excerpt_quotes_only_the_start() -> None:
    assert validation.excerpt("short") == "short"
    assert validation.excerpt("x" * 1000) == "x" * validation.MAX_EXCERPT + "…"


def test_json_value_matches_json_format() -> None:
    message = struct_pb2.Struct()
    message.update({"a": 1, "b": [True, None, "s"], "c": {"d": 2.5}})
    assert validation.json_value(message) == {"a": 1.0, "b": [True, None, "s"], "c": {"d": 2.5}}


def test_integer_and_text_helpers() -> None:
    assert validation.integer(5, "n", low=1, high=5) == 5
    with pytest.raises(InvalidInput, match="n must be between 1 and 5"):
        validation.integer(6, "n", low=1, high=5)
    with pytest.raises(InvalidInput, match="name is required"):
        validation.text("", "name", required=True)
