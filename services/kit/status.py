"""StatusService: whole-platform health, answered by whichever service the gateway reaches."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.kit.settings import SERVICE_NAMES, ServiceName, Settings
from services.kit.transport import HTTP_STATUS_HEADER
from studiox.status.v1 import status_pb2, status_pb2_grpc

CHECK_TIMEOUT_SECONDS = 1.0


class StatusServicer(status_pb2_grpc.StatusServiceServicer):
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._channels: dict[ServiceName, grpc.aio.Channel] = {}

    def _stub(self, service: ServiceName) -> health_pb2_grpc.HealthStub:
        channel = self._channels.get(service)
        if channel is None:
            channel = grpc.aio.insecure_channel(self._settings.channel_target(service))
            self._channels[service] = channel
        return health_pb2_grpc.HealthStub(channel)

    async def _check(self, service: ServiceName) -> str:
        try:
            reply = await self._stub(service).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=CHECK_TIMEOUT_SECONDS
            )
        except grpc.aio.AioRpcError:
            return "UNREACHABLE"
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))

    async def GetStatus(
        self, request: status_pb2.GetStatusRequest, context: grpc.aio.ServicerContext
    ) -> status_pb2.GetStatusResponse:
        results = await asyncio.gather(*(self._check(s) for s in SERVICE_NAMES))
        services: dict[str, str] = dict(zip(SERVICE_NAMES, results, strict=True))
        healthy = all(v == "SERVING" for v in services.values())
        if not healthy:
            await context.send_initial_metadata(((HTTP_STATUS_HEADER, "503"),))
        response = status_pb2.GetStatusResponse(
            status="ok" if healthy else "degraded", services=services
        )
        response.timestamp.FromDatetime(datetime.now(UTC))
        return response

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
