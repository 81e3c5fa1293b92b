"""Errors, in one place: the domain errors (plain exceptions raised by rules and stores), the gRPC
status each becomes on the way out (`status_for`, with google.rpc.ErrorInfo), and the domain error
a downstream service's status stands for on the way back in (`domain_error`). The gateway maps the
same reasons to HTTP (gateway/error_shaping.lua).

Besides the standard `grpc-status-details-bin`, the reason is sent as the `x-error-reason` trailer
so the gateway (a Lua filter without protobuf) can pick the HTTP status.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Self

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2

# An error's message and each metadata value travel in gRPC trailers (grpc-message,
# grpc-status-details-bin) on a connection the gateway shares between users: an oversized trailer
# resets that connection and fails other users' requests. So both are cut to these sizes (UTF-8).
MAX_MESSAGE_BYTES = 1024
MAX_METADATA_VALUE_BYTES = 256


class ErrorKind(Enum):
    INVALID_INPUT = "INVALID_INPUT"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    NOT_FOUND = "NOT_FOUND"
    INVALID_STATE = "INVALID_STATE"
    INSUFFICIENT_CREDITS = "INSUFFICIENT_CREDITS"
    FEATURE_NOT_IN_PLAN = "FEATURE_NOT_IN_PLAN"
    UNAVAILABLE = "UNAVAILABLE"
    NOT_CONFIGURED = "NOT_CONFIGURED"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"


class DomainError(Exception):
    """Base of every error meant for the caller. `message` is shown to users, so keep it free of
    internals; `metadata` becomes ErrorInfo metadata."""

    kind: ErrorKind = ErrorKind.INVALID_INPUT

    def __init__(self, message: str, **metadata: str) -> None:
        message = bounded(message, MAX_MESSAGE_BYTES)
        super().__init__(message)
        self.message = message
        self.metadata = {k: bounded(v, MAX_METADATA_VALUE_BYTES) for k, v in metadata.items()}

    @classmethod
    def from_remote(cls, message: str, metadata: Mapping[str, str]) -> Self:
        """The error as a downstream service raised it, from its status message and ErrorInfo
        metadata. Bypasses the subclass's own __init__, whose arguments (e.g. InsufficientCredits'
        numbers) the message already spells out; a subclass with attributes of its own restores
        them from the metadata."""
        error = cls.__new__(cls)
        DomainError.__init__(error, message, **metadata)
        return error


def bounded(text: str, max_bytes: int) -> str:
    """`text` cut to at most `max_bytes` of UTF-8 (on a character boundary, marked with …)."""
    encoded = text.encode("utf-8", "surrogatepass")
    if len(encoded) <= max_bytes:
        return text
    marker = "…"
    cut = encoded[: max_bytes - len(marker.encode())].decode("utf-8", "ignore")
    return cut + marker


class InvalidInput(DomainError):
    kind = ErrorKind.INVALID_INPUT


class PayloadTooLarge(DomainError):
    kind = ErrorKind.PAYLOAD_TOO_LARGE


class Unauthenticated(DomainError):
    kind = ErrorKind.UNAUTHENTICATED

    def __init__(self, message: str = "Unauthorized", **metadata: str) -> None:
        super().__init__(message, **metadata)


class PermissionDenied(DomainError):
    kind = ErrorKind.PERMISSION_DENIED


class FeatureNotInPlan(DomainError):
    kind = ErrorKind.FEATURE_NOT_IN_PLAN


class NotFound(DomainError):
    kind = ErrorKind.NOT_FOUND


class InvalidState(DomainError):
    kind = ErrorKind.INVALID_STATE


class InsufficientCredits(DomainError):
    kind = ErrorKind.INSUFFICIENT_CREDITS

    def __init__(self, required: int, available: int) -> None:
        super().__init__(
            f"Insufficient credits. Required: {required}, Available: {available}",
            required=str(required),
            available=str(available),
        )
        self.required = required
        self.available = available

    @classmethod
    def from_remote(cls, message: str, metadata: Mapping[str, str]) -> Self:
        error = super().from_remote(message, metadata)
        error.required = _int_or_zero(metadata.get("required"))
        error.available = _int_or_zero(metadata.get("available"))
        return error


def _int_or_zero(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


class Unavailable(DomainError):
    kind = ErrorKind.UNAVAILABLE


class NotConfigured(DomainError):
    kind = ErrorKind.NOT_CONFIGURED


# --- to and from gRPC statuses ---------------------------------------------------------------------

ERROR_DOMAIN = "studiox.dev"
REASON_TRAILER = "x-error-reason"


def _one_class_per_kind() -> dict[ErrorKind, type[DomainError]]:
    """The class a kind stands for, read off the direct subclasses above (one per kind) so adding a
    kind needs no second list. Computed at import, before other modules derive their own (e.g.
    billing's CardDeclined), which stay out: a remote error comes back as the kit's class."""
    classes = DomainError.__subclasses__()
    by_kind = {cls.kind: cls for cls in classes}
    if len(by_kind) != len(classes) or set(by_kind) != set(ErrorKind):
        raise RuntimeError("every ErrorKind needs exactly one DomainError subclass in errors.py")
    return by_kind


ERROR_TYPES = _one_class_per_kind()

GRPC_CODES: dict[ErrorKind, grpc.StatusCode] = {
    ErrorKind.INVALID_INPUT: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorKind.PAYLOAD_TOO_LARGE: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorKind.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    ErrorKind.PERMISSION_DENIED: grpc.StatusCode.PERMISSION_DENIED,
    ErrorKind.FEATURE_NOT_IN_PLAN: grpc.StatusCode.PERMISSION_DENIED,
    ErrorKind.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ErrorKind.INVALID_STATE: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorKind.INSUFFICIENT_CREDITS: grpc.StatusCode.FAILED_PRECONDITION,
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


def metadata_of(error: grpc.aio.AioRpcError) -> dict[str, str]:
    """The ErrorInfo metadata (e.g. `required`, `available`) a downstream service sent."""
    for key, value in error.trailing_metadata() or ():
        if key != "grpc-status-details-bin" or not isinstance(value, bytes):
            continue
        try:
            status = status_pb2.Status.FromString(value)
        except DecodeError:
            return {}
        info = error_details_pb2.ErrorInfo()
        for detail in status.details:
            if detail.Unpack(info) and info.domain == ERROR_DOMAIN:
                return dict(info.metadata)
    return {}


def domain_error(error: grpc.aio.AioRpcError) -> DomainError:
    """The domain error a downstream service raised, so it reaches our caller unchanged: the same
    class (so `except NotFound` works across services), message and metadata. Transport failures
    and unexpected statuses become Unavailable."""
    try:
        kind = ErrorKind(reason_of(error))
    except ValueError:
        return Unavailable("A dependency is unavailable")
    return ERROR_TYPES[kind].from_remote(error.details() or kind.value, metadata_of(error))
