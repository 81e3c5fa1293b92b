from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.ports import free_port
from tests.support.slow_service import METHOD


async def _wait_serving(channel: grpc.aio.Channel) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + 15
    while True:
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.aio.AioRpcError:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.1)


async def test_sigterm_lets_an_in_flight_rpc_finish() -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tests.support.slow_service", str(port)])
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            await _wait_serving(channel)
            slow = channel.unary_unary(METHOD)
            in_flight = asyncio.ensure_future(slow(b"1.5", timeout=10))
            await asyncio.sleep(0.3)
            proc.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.3)

            # New calls are refused while the old one is still being served...
            with pytest.raises(grpc.aio.AioRpcError):
                await slow(b"0", timeout=2)
            # ...and the in-flight one completes normally.
            assert await in_flight == b"finished"
        assert await asyncio.to_thread(proc.wait, 10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
