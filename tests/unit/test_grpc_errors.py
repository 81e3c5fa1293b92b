from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from services.kit import errors
from services.kit.errors import GRPC_CODES, message_for, status_for


def test_every_error_kind_has_a_grpc_code() -> None:
    assert set(GRPC_CODES) == set(errors.ErrorKind)


@pytest.mark.parametrize(
    ("error", "code", "reason"),
    [
        (errors.InvalidInput("bad"), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_INPUT"),
        (
            errors.InsufficientCredits(5, 2),
            grpc.StatusCode.FAILED_PRECONDITION,
            "INSUFFICIENT_CREDITS",
        ),
        (errors.NotFound("Task not found"), grpc.StatusCode.NOT_FOUND, "NOT_FOUND"),
        (errors.Unauthenticated(), grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED"),
        (errors.InvalidState("no"), grpc.StatusCode.FAILED_PRECONDITION, "INVALID_STATE"),
    ],
)
def test_status_carries_error_info(
    error: errors.DomainError, code: grpc.StatusCode, reason: str
) -> None:
    got_code, trailers = status_for(error)
    assert got_code == code
    md = dict(trailers)
    assert md["x-error-reason"] == reason
    status = status_pb2.Status.FromString(md["grpc-status-details-bin"])
    assert status.code == code.value[0]
    assert status.message == error.message
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert info.reason == reason
    assert info.domain == "studiox.dev"


def test_insufficient_credits_message_and_metadata() -> None:
    err = errors.InsufficientCredits(required=5, available=2)
    assert err.message == "Insufficient credits. Required: 5, Available: 2"
    assert err.metadata == {"required": "5", "available": "2"}


def test_messages_and_metadata_are_bounded_for_the_trailers() -> None:
    # A 70 KB value echoed into grpc-message / grpc-status-details-bin made a trailer large enough
    # for Envoy to reset the HTTP/2 connection it shares between users.
    huge = "é" * 70_000
    error = errors.InvalidInput(f"Invalid plan: {huge}", plan=huge)
    _, trailers = status_for(error)
    message = message_for(error)
    assert len(message.encode()) <= errors.MAX_MESSAGE_BYTES
    assert message.startswith("Invalid plan: éé")
    assert message.endswith("…")
    assert sum(len(v) for _, v in trailers) < 2 * errors.MAX_MESSAGE_BYTES
    status = status_pb2.Status.FromString(dict(trailers)["grpc-status-details-bin"])
    assert status.message == message
    info = error_details_pb2.ErrorInfo()
    status.details[0].Unpack(info)
    assert len(info.metadata["plan"].encode()) <= errors.MAX_METADATA_VALUE_BYTES


def test_a_message_set_after_construction_is_bounded_too() -> None:
    error = errors.NotFound("x")
    error.message = "y" * 100_000
    assert len(message_for(error)) <= errors.MAX_MESSAGE_BYTES
    status = status_pb2.Status.FromString(dict(status_for(error)[1])["grpc-status-details-bin"])
    assert len(status.message) <= errors.MAX_MESSAGE_BYTES


def test_short_messages_are_untouched() -> None:
    assert errors.bounded("Task not found", 1024) == "Task not found"
    assert errors.bounded("x" * 1024, 1024) == "x" * 1024
    cut = errors.bounded("€" * 1000, 1024)  # 3 bytes each: cut on a character boundary
    assert cut.endswith("…")
    assert len(cut.encode()) <= 1024


def _as_received(error: errors.DomainError) -> grpc.aio.AioRpcError:
    """`error` as a caller receives it: the status the kit's server interceptor sends for it."""
    code, trailers = status_for(error)
    return grpc.aio.AioRpcError(
        code, grpc.aio.Metadata(), grpc.aio.Metadata(*trailers), details=message_for(error)
    )


def test_every_error_kind_comes_back_as_its_own_class() -> None:
    assert set(errors.ERROR_TYPES) == set(errors.ErrorKind)
    assert all(cls.kind is kind for kind, cls in errors.ERROR_TYPES.items())


def test_a_downstream_insufficient_credits_comes_back_as_insufficient_credits() -> None:
    # It used to come back as a plain DomainError with the kind set: `except InsufficientCredits`
    # missed it and callers had to compare kinds.
    back = errors.domain_error(_as_received(errors.InsufficientCredits(required=5, available=2)))
    assert isinstance(back, errors.InsufficientCredits)
    assert back.kind is errors.ErrorKind.INSUFFICIENT_CREDITS
    assert back.message == "Insufficient credits. Required: 5, Available: 2"
    assert back.metadata == {"required": "5", "available": "2"}
    assert (back.required, back.available) == (5, 2)


@pytest.mark.parametrize(
    "error",
    [
        errors.NotFound("Task not found"),
        errors.FeatureNotInPlan("Not in your plan", feature="video"),
        errors.InvalidState("Task already finished"),
        errors.Unauthenticated(),
        errors.Unavailable("Database unavailable"),
    ],
)
def test_a_downstream_error_keeps_its_class_message_and_metadata(
    error: errors.DomainError,
) -> None:
    back = errors.domain_error(_as_received(error))
    assert type(back) is type(error)
    assert (back.kind, back.message, back.metadata) == (error.kind, error.message, error.metadata)


def test_a_status_without_a_known_reason_is_unavailable() -> None:
    lost = grpc.aio.AioRpcError(
        grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), details="refused"
    )
    back = errors.domain_error(lost)
    assert isinstance(back, errors.Unavailable)
    assert back.message == "A dependency is unavailable"
