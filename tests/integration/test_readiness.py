"""Readiness that is true when it is reported, and ports that nobody else can take: what made a ready
stack answer 503 on a machine busy with other stacks."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.kit.server import ServiceSpec, start_server
from tests.support.cluster import make_settings
from tests.support.ports import free_port


def test_a_reserved_port_is_handed_to_nobody_else() -> None:
    port = free_port()
    with socket.socket() as other, pytest.raises(OSError, match="Address already in use"):
        other.bind(("127.0.0.1", port))  # what anyone else's server would do with it
    for _ in range(2000):
        with socket.socket() as other:
            other.bind(("127.0.0.1", 0))
            assert other.getsockname()[1] != port


def _no_services(_: grpc.aio.Server) -> Sequence[str]:
    return []


async def test_a_service_binds_its_reserved_port_and_a_second_one_cannot() -> None:
    address = f"127.0.0.1:{free_port()}"
    settings = make_settings("postgresql://unused@127.0.0.1:1/unused")
    first = await start_server(ServiceSpec(name="user", register=_no_services), settings, address)
    try:
        # Without SO_REUSEPORT off, this would bind too, and the kernel would share connections.
        with pytest.raises(RuntimeError, match="Failed to bind"):
            await start_server(ServiceSpec(name="user", register=_no_services), settings, address)
    finally:
        await first.stop(0)


async def test_serving_only_once_the_dependencies_answered() -> None:
    ready = asyncio.Event()

    async def probe() -> None:
        if not ready.is_set():
            raise ConnectionError("database not there yet")

    address = f"127.0.0.1:{free_port()}"
    settings = make_settings("postgresql://unused@127.0.0.1:1/unused")
    spec = ServiceSpec(name="user", register=_no_services, probe=probe)
    running = await start_server(spec, settings, address)
    try:
        async with grpc.aio.insecure_channel(address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)

            async def status() -> int:
                reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
                return int(reply.status)

            assert await status() == health_pb2.HealthCheckResponse.NOT_SERVING
            ready.set()
            for _ in range(50):
                if await status() == health_pb2.HealthCheckResponse.SERVING:
                    break
                await asyncio.sleep(0.1)
            assert await status() == health_pb2.HealthCheckResponse.SERVING
    finally:
        await running.stop(0)
