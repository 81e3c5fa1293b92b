"""StatusService: whole-platform health, answered by whichever service the gateway reaches."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.kit.settings import SERVICE_NAMES, ServiceName, Settings
from services.kit.transport import HTTP_STATUS_HEADER, RECONNECT_OPTIONS
from studiox.status.v1 import status_pb2, status_pb2_grpc

CHECK_TIMEOUT_SECONDS = 1.0
UNREACHABLE = "UNREACHABLE"


async def health_of(channel: grpc.aio.Channel, deadline: float = CHECK_TIMEOUT_SECONDS) -> str:
    """grpc.health.v1 status name of the server behind `channel`, or UNREACHABLE."""
    try:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=deadline
        )
    except grpc.aio.AioRpcError:
        return UNREACHABLE
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


class StatusServicer(status_pb2_grpc.StatusServiceServicer):
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._channels: dict[ServiceName, grpc.aio.Channel] = {}

    def _channel(self, service: ServiceName) -> grpc.aio.Channel:
        # Plain channels, not ServiceChannels: a status check must fail fast, not wait for a
        # restarting peer; but it reconnects quickly, so a peer back is reported back at once.
        channel = self._channels.get(service)
        if channel is None:
            channel = grpc.aio.insecure_channel(
                self._settings.channel_target(service), options=RECONNECT_OPTIONS
            )
            self._channels[service] = channel
        return channel

    async def GetStatus(
        self, request: status_pb2.GetStatusRequest, context: grpc.aio.ServicerContext
    ) -> status_pb2.GetStatusResponse:
        results = await asyncio.gather(*(health_of(self._channel(s)) for s in SERVICE_NAMES))
        services: dict[str, str] = dict(zip(SERVICE_NAMES, results, strict=True))
        healthy = all(v == "SERVING" for v in services.values())
        if not healthy:
            await context.send_initial_metadata(((HTTP_STATUS_HEADER, "503"),))
        response = status_pb2.GetStatusResponse(
            status="ok" if healthy else "degraded",
            # Lowercase on the wire ("serving", "unreachable"), like every other value of the API.
            services={name: state.lower() for name, state in services.items()},
        )
        response.timestamp.FromDatetime(datetime.now(UTC))
        return response

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
