"""Readiness that is true when it is reported, and ports that nobody else can take: what made a ready
stack answer 503 on a machine busy with other stacks."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from devstack.stack import REPLICA_PORT_STEP
from services.kit.server import ServiceSpec, start_server
from tests.support import ports
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


def test_every_worker_port_of_a_service_is_reserved() -> None:
    """SERVICE_WORKERS=N puts a service's processes REPLICA_PORT_STEP apart: every one of those
    ports is reserved, not only the first (an unreserved one may be any outgoing connection's)."""
    port = free_port(spaced=REPLICA_PORT_STEP, count=3)
    for i in range(3):
        with socket.socket() as other, pytest.raises(OSError, match="Address already in use"):
            other.bind(("127.0.0.1", port + REPLICA_PORT_STEP * i))
    with socket.socket() as server:  # ... while our own servers still bind and listen on them
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", port + REPLICA_PORT_STEP * 2))
        server.listen()


def test_a_port_another_session_reserved_is_not_taken_for_a_row() -> None:
    held = free_port()  # as another test session holds its ports (SO_REUSEADDR, not listening)
    assert ports.claim(held) is None


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
