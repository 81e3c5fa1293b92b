"""HTTP-facing conventions shared between services and the gateway."""

from __future__ import annotations

import grpc

# Response header (gRPC initial metadata) through which an RPC picks a non-200 HTTP success status,
# e.g. 201 for creations; gateway/error_shaping.lua applies and removes it.
HTTP_STATUS_HEADER = "x-http-status"

# The request header a client names a write's idempotency key in (the API's, as documented in
# docs/openapi.json), forwarded by the gateway.
IDEMPOTENCY_HEADER = "idempotency-key"

# Client channel options: after a peer restarts, reconnect within a second. gRPC's default backoff
# (1 s growing to 120 s) leaves a channel failing fast for a long while after the peer is back.
RECONNECT_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1_000),
)


async def set_http_status(context: grpc.aio.ServicerContext, status: int) -> None:
    await context.send_initial_metadata(((HTTP_STATUS_HEADER, str(status)),))


def request_header(context: grpc.aio.ServicerContext, name: str) -> str | None:
    """An HTTP request header the gateway forwarded (as gRPC metadata, lower-case `name`)."""
    for key, value in context.invocation_metadata() or ():
        if key == name and isinstance(value, str):
            return value
    return None
