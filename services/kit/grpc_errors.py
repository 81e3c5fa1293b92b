"""The one place where domain errors become gRPC statuses (with google.rpc.ErrorInfo).

Besides the standard `grpc-status-details-bin`, the reason is sent as the `x-error-reason` trailer so the
gateway (a Lua filter without protobuf) can pick the HTTP status; see gateway/error_shaping.lua.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from services.kit.errors import (
    MAX_MESSAGE_BYTES,
    MAX_METADATA_VALUE_BYTES,
    DomainError,
    ErrorKind,
    bounded,
)

ERROR_DOMAIN = "studiox.dev"
REASON_TRAILER = "x-error-reason"

GRPC_CODES: dict[ErrorKind, grpc.StatusCode] = {
    ErrorKind.INVALID_INPUT: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorKind.PAYLOAD_TOO_LARGE: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorKind.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    ErrorKind.PERMISSION_DENIED: grpc.StatusCode.PERMISSION_DENIED,
    ErrorKind.FEATURE_NOT_IN_PLAN: grpc.StatusCode.PERMISSION_DENIED,
    ErrorKind.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ErrorKind.INVALID_STATE: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorKind.ALREADY_EXISTS: grpc.StatusCode.ALREADY_EXISTS,
    ErrorKind.INSUFFICIENT_CREDITS: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorKind.RATE_LIMITED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ErrorKind.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    ErrorKind.NOT_CONFIGURED: grpc.StatusCode.FAILED_PRECONDITION,
}


def message_for(error: DomainError) -> str:
    """The status message (grpc-message) of a domain error, bounded whatever was put in it."""
    return bounded(error.message, MAX_MESSAGE_BYTES)


def status_for(error: DomainError) -> tuple[grpc.StatusCode, tuple[tuple[str, str | bytes], ...]]:
    """gRPC code and trailing metadata (rich status + reason) for a domain error. Message and
    metadata are bounded (DomainError does so too; this also covers attributes set afterwards), so
    no request can make a trailer large enough to break the shared connection it travels on."""
    code = GRPC_CODES[error.kind]
    metadata = {
        key[:64]: bounded(str(value), MAX_METADATA_VALUE_BYTES)
        for key, value in list(error.metadata.items())[:16]
    }
    info = error_details_pb2.ErrorInfo(
        reason=error.kind.value, domain=ERROR_DOMAIN, metadata=metadata
    )
    detail = any_pb2.Any()
    detail.Pack(info)
    status = status_pb2.Status(code=code.value[0], message=message_for(error), details=[detail])
    trailers: tuple[tuple[str, str | bytes], ...] = (
        ("grpc-status-details-bin", status.SerializeToString()),
        (REASON_TRAILER, error.kind.value),
    )
    return code, trailers


def reason_of(error: grpc.aio.AioRpcError) -> str | None:
    """The ErrorInfo reason a downstream service sent, for re-raising it as a domain error."""
    for key, value in error.trailing_metadata() or ():
        if key == REASON_TRAILER:
            return value if isinstance(value, str) else value.decode()
    return None
