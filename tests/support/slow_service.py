"""A process running the shared bootstrap (services.kit.server.serve) with one slow RPC, so a test can
send SIGTERM while that RPC is in flight. Usage: python -m tests.support.slow_service PORT"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence

import grpc

from services.kit.access import Access
from services.kit.logs import configure_logging
from services.kit.server import ServiceSpec, serve
from services.kit.settings import Settings

METHOD = "/studiox.test.Slow/Wait"


async def _wait(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    await asyncio.sleep(float(request.decode()))
    return b"finished"


def _register(server: grpc.aio.Server) -> Sequence[str]:
    handler = grpc.method_handlers_generic_handler(
        "studiox.test.Slow",
        {"Wait": grpc.unary_unary_rpc_method_handler(_wait)},
    )
    server.add_generic_rpc_handlers((handler,))
    return ["studiox.test.Slow"]


def main() -> None:
    port = int(sys.argv[1])
    settings = Settings(_env_file=None, grpc_port=port, shutdown_grace_seconds=10)
    configure_logging("slow", "INFO", "text")
    spec = ServiceSpec(
        name="scheduler",
        register=_register,
        access_overrides={"Slow/Wait": Access.PUBLIC},
    )
    asyncio.run(serve(spec, settings))


if __name__ == "__main__":
    main()
