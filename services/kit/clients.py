"""Calling other services: channels carrying the internal credential and the request id, and
downstream errors turned back into domain errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from services.kit import tracing
from services.kit.access import INTERNAL_TOKEN_HEADER
from services.kit.context import current_request_id
from services.kit.errors import DomainError, ErrorKind, Unavailable
from services.kit.grpc_errors import reason_of
from services.kit.settings import ServiceName, Settings

DEFAULT_TIMEOUT_SECONDS = 10.0


class _InternalCallInterceptor(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    def __init__(self, token: str) -> None:
        self._token = token

    async def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Awaitable[Any]],
        details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        metadata = grpc.aio.Metadata(*(details.metadata or ()))
        metadata.add(INTERNAL_TOKEN_HEADER, self._token)
        metadata.add("x-request-id", current_request_id())
        # Ride out a peer's restart within the call's deadline instead of failing at once while
        # the channel reconnects.
        return await continuation(details._replace(metadata=metadata, wait_for_ready=True), request)


class ServiceChannels:
    """One long-lived channel per downstream service, opened on first use (inside the event loop
    that will use it: aio channels are bound to their loop)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._channels: dict[ServiceName, grpc.aio.Channel] = {}

    def channel(self, service: ServiceName) -> grpc.aio.Channel:
        channel = self._channels.get(service)
        if channel is None:
            channel = grpc.aio.insecure_channel(
                self._settings.channel_target(service),
                interceptors=[
                    _InternalCallInterceptor(
                        self._settings.internal_service_token.get_secret_value()
                    ),
                    # Passes the current trace on (when tracing is configured).
                    *tracing.client_interceptors(),
                ],
                options=[
                    ("grpc.keepalive_time_ms", 30_000),
                    ("grpc.keepalive_permit_without_calls", 0),
                    ("grpc.initial_reconnect_backoff_ms", 100),
                    ("grpc.min_reconnect_backoff_ms", 100),
                    ("grpc.max_reconnect_backoff_ms", 1_000),
                    ("grpc.lb_policy_name", "round_robin"),
                ],
            )
            self._channels[service] = channel
        return channel

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()


def domain_error(error: grpc.aio.AioRpcError) -> DomainError:
    """The domain error a downstream service raised, so it reaches our caller unchanged (same kind
    and message); transport failures and unexpected statuses become Unavailable."""
    reason = reason_of(error)
    try:
        kind = ErrorKind(reason)
    except ValueError:
        return Unavailable("A dependency is unavailable")
    remote = DomainError(error.details() or kind.value)
    remote.kind = kind
    return remote
