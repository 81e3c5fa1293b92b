"""Request headers as the services read them from the gateway's gRPC metadata."""

from __future__ import annotations

from typing import Any, cast

import grpc

from services.kit.transport import request_header


class _Context:
    def __init__(self, metadata: tuple[tuple[str, str | bytes], ...] | None) -> None:
        self._metadata = metadata

    def invocation_metadata(self) -> tuple[tuple[str, str | bytes], ...] | None:
        return self._metadata


def _context(*pairs: tuple[str, str | bytes]) -> grpc.aio.ServicerContext[Any, Any]:
    return cast("grpc.aio.ServicerContext[Any, Any]", _Context(pairs))


def test_the_named_header_is_read() -> None:
    context = _context(("x-request-id", "r1"), ("idempotency-key", "k1"))
    assert request_header(context, "idempotency-key") == "k1"


def test_a_missing_header_is_none() -> None:
    assert request_header(_context(("x-request-id", "r1")), "idempotency-key") is None
    empty = cast("grpc.aio.ServicerContext[Any, Any]", _Context(None))
    assert request_header(empty, "idempotency-key") is None


def test_binary_metadata_is_not_a_header() -> None:
    # A `-bin` key carries bytes; no HTTP header the gateway forwards arrives that way.
    assert request_header(_context(("stripe-signature", b"\x00")), "stripe-signature") is None
