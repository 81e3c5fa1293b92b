"""Domain errors: plain exceptions raised by rules and stores, mapped to gRPC in one place
(services.kit.grpc_errors) and to HTTP by the gateway."""

from __future__ import annotations

from enum import Enum

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
    ALREADY_EXISTS = "ALREADY_EXISTS"
    INSUFFICIENT_CREDITS = "INSUFFICIENT_CREDITS"
    FEATURE_NOT_IN_PLAN = "FEATURE_NOT_IN_PLAN"
    RATE_LIMITED = "RATE_LIMITED"
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


class AlreadyExists(DomainError):
    kind = ErrorKind.ALREADY_EXISTS


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


class RateLimited(DomainError):
    kind = ErrorKind.RATE_LIMITED


class Unavailable(DomainError):
    kind = ErrorKind.UNAVAILABLE


class NotConfigured(DomainError):
    kind = ErrorKind.NOT_CONFIGURED
