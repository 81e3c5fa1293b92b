from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from services.kit import errors
from services.kit.grpc_errors import GRPC_CODES, status_for


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
