"""Servicers of auto top-up (proto <-> the AutoTopUps service layer only)."""

from __future__ import annotations

import grpc

from services.billing.autotopup import AutoTopUps, TopUpView
from services.kit.context import current_identity
from studiox.billing.v1 import auto_top_up_pb2, auto_top_up_pb2_grpc


def _to_proto(view: TopUpView) -> auto_top_up_pb2.AutoTopUp:
    s = view.settings
    if s is None:
        return auto_top_up_pb2.AutoTopUp(setup_url=view.setup_url)
    return auto_top_up_pb2.AutoTopUp(
        enabled=s.enabled,
        threshold=s.threshold,
        pack_id=s.pack_id,
        has_payment_method=s.payment_method_id is not None,
        armed=s.armed,
        failures=s.failures,
        disabled_reason=s.disabled_reason,
        setup_url=view.setup_url,
    )


class AutoTopUpApi(auto_top_up_pb2_grpc.AutoTopUpServiceServicer):
    def __init__(self, top_ups: AutoTopUps) -> None:
        self._top_ups = top_ups

    async def GetAutoTopUp(
        self, request: auto_top_up_pb2.GetAutoTopUpRequest, context: grpc.aio.ServicerContext
    ) -> auto_top_up_pb2.GetAutoTopUpResponse:
        view = await self._top_ups.get(current_identity().user_id)
        return auto_top_up_pb2.GetAutoTopUpResponse(auto_top_up=_to_proto(view))

    async def PutAutoTopUp(
        self, request: auto_top_up_pb2.PutAutoTopUpRequest, context: grpc.aio.ServicerContext
    ) -> auto_top_up_pb2.PutAutoTopUpResponse:
        view = await self._top_ups.put(
            current_identity(),
            enabled=request.enabled,
            threshold=request.threshold,
            pack_id=request.pack_id,
        )
        return auto_top_up_pb2.PutAutoTopUpResponse(auto_top_up=_to_proto(view))


class AutoTopUpInternalApi(auto_top_up_pb2_grpc.AutoTopUpInternalServiceServicer):
    def __init__(self, top_ups: AutoTopUps) -> None:
        self._top_ups = top_ups

    async def RunTopUp(
        self, request: auto_top_up_pb2.RunTopUpRequest, context: grpc.aio.ServicerContext
    ) -> auto_top_up_pb2.RunTopUpResponse:
        outcome, detail = await self._top_ups.run(request.user_id, request.crossing_id)
        return auto_top_up_pb2.RunTopUpResponse(outcome=outcome, detail=detail)
