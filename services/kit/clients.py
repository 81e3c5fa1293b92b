"""Calling other services: channels carrying the internal credential and the request id, and
downstream errors turned back into domain errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import grpc

from services.kit import tracing
from services.kit.access import INTERNAL_TOKEN_HEADER
from services.kit.context import current_request_id
from services.kit.errors import domain_error
from services.kit.settings import ServiceName, Settings
from services.kit.transport import RECONNECT_OPTIONS

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
                    *RECONNECT_OPTIONS,
                    ("grpc.lb_policy_name", "round_robin"),
                ],
            )
            self._channels[service] = channel
        return channel

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()


Reply = TypeVar("Reply")


async def call(method: Callable[..., Awaitable[Reply]], request: Any, *, deadline: float) -> Reply:
    """One call of a generated stub's `method` within `deadline` seconds; a failure comes back as
    the domain error it stands for (`domain_error`). The typed clients (`services/<svc>/client.py`)
    make every call through here, so errors are mapped in one place."""
    try:
        return await method(request, timeout=deadline)
    except grpc.aio.AioRpcError as err:
        raise domain_error(err) from err


Stub = TypeVar("Stub")


class ServiceClient(Generic[Stub]):
    """Base of the typed clients (`services/<svc>/client.py`): the one deadline of all their calls,
    and the generated stub for `service`, built on first use and again only when the channel
    changes (a gRPC aio channel belongs to the event loop it was opened in, and clients are often
    built before the service's loop runs; building a stub per call costs every call its
    multicallables)."""

    service: ServiceName
    stub_type: Callable[[grpc.aio.Channel], Stub]

    def __init__(
        self, channels: ServiceChannels, *, timeout: float = DEFAULT_TIMEOUT_SECONDS
    ) -> None:
        self._channels = channels
        self.timeout = timeout
        self._stub_of: tuple[grpc.aio.Channel, Stub] | None = None

    @property
    def _stub(self) -> Stub:
        channel = self._channels.channel(self.service)
        if self._stub_of is None or self._stub_of[0] is not channel:
            self._stub_of = (channel, self.stub_type(channel))
        return self._stub_of[1]

    async def _call(self, method: Callable[..., Awaitable[Reply]], request: Any) -> Reply:
        return await call(method, request, deadline=self.timeout)
