"""The ceiling C: Envoy (same template, same transcoder) in front of a trivial grpc.aio handler that
answers ListPlans with a constant. Every StudioX endpoint is reported as a ratio to it.

Usage: python -m bench.ceiling PORT
"""

from __future__ import annotations

import asyncio
import sys

import grpc

from studiox.billing.v1 import billing_pb2

REPLY = billing_pb2.ListPlansResponse(
    success=True,
    plans=[
        billing_pb2.Plan(
            id="free", name="Free", price=0, currency="usd", interval="month", monthly_credits=10
        )
    ],
).SerializeToString()


async def _list_plans(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return REPLY


async def serve(port: int) -> None:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "studiox.billing.v1.BillingService",
                {"ListPlans": grpc.unary_unary_rpc_method_handler(_list_plans)},
            ),
        )
    )
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
