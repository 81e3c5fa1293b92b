"""Domain errors: plain exceptions raised by rules and stores, mapped to gRPC in one place
(services.kit.grpc_errors) and to HTTP by the gateway."""

from __future__ import annotations

from enum import Enum


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
        super().__init__(message)
        self.message = message
        self.metadata = metadata


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
