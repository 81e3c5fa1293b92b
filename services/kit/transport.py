"""HTTP-facing conventions shared between services and the gateway."""

from __future__ import annotations

import grpc

# Response header (gRPC initial metadata) through which an RPC picks a non-200 HTTP success status,
# e.g. 201 for creations; gateway/error_shaping.lua applies and removes it.
HTTP_STATUS_HEADER = "x-http-status"


async def set_http_status(context: grpc.aio.ServicerContext, status: int) -> None:
    await context.send_initial_metadata(((HTTP_STATUS_HEADER, str(status)),))
