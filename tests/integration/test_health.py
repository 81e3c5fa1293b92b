from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.kit.settings import SERVICE_NAMES, ServiceName
from studiox.status.v1 import status_pb2, status_pb2_grpc
from tests.support.cluster import Cluster


@pytest.mark.parametrize("name", SERVICE_NAMES)
async def test_each_service_is_serving(cluster: Cluster, name: ServiceName) -> None:
    stub = health_pb2_grpc.HealthStub(cluster.channel(name))
    reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_status_reports_every_service(cluster: Cluster) -> None:
    stub = status_pb2_grpc.StatusServiceStub(cluster.channel("billing"))
    reply, call = await _status(stub)
    assert reply.status == "ok"
    assert dict(reply.services) == dict.fromkeys(SERVICE_NAMES, "serving")
    assert ("x-http-status", "503") not in (await call.initial_metadata() or ())


async def test_status_is_degraded_while_a_service_is_down(cluster: Cluster) -> None:
    stub = status_pb2_grpc.StatusServiceStub(cluster.channel("user"))
    async with cluster.stopped("task"):
        reply, call = await _status(stub)
        assert reply.status == "degraded"
        assert reply.services["task"] == "unreachable"
        assert reply.services["user"] == "serving"
        assert ("x-http-status", "503") in tuple(await call.initial_metadata() or ())
    # Back as soon as the task service is: the status check's channel reconnects at once.
    reply, _ = await _status(stub)
    assert reply.status == "ok", dict(reply.services)


async def _status(
    stub: status_pb2_grpc.StatusServiceStub,
) -> tuple[status_pb2.GetStatusResponse, grpc.aio.UnaryUnaryCall]:
    call = stub.GetStatus(status_pb2.GetStatusRequest(), timeout=5)
    return await call, call


async def test_liveness_stays_serving_without_the_database(cluster: Cluster) -> None:
    """Liveness only says the process is alive (readiness, above, follows dependencies)."""
    from services.kit.server import LIVENESS

    stub = health_pb2_grpc.HealthStub(cluster.channel("billing"))
    assert (
        await stub.Check(health_pb2.HealthCheckRequest(service=LIVENESS), timeout=5)
    ).status == health_pb2.HealthCheckResponse.SERVING
