"""Servicers of balance alerts (proto <-> the Alerts service layer only)."""

from __future__ import annotations

import grpc

from services.credit.alerts import Alerts
from services.kit.context import current_identity
from services.kit.proto_time import to_timestamp
from studiox.credit.v1 import alerts_pb2, alerts_pb2_grpc


class AlertApi(alerts_pb2_grpc.AlertServiceServicer):
    def __init__(self, alerts: Alerts) -> None:
        self._alerts = alerts

    async def ListAlerts(
        self, request: alerts_pb2.ListAlertsRequest, context: grpc.aio.ServicerContext
    ) -> alerts_pb2.ListAlertsResponse:
        rows = await self._alerts.recent(current_identity().user_id, request.limit)
        return alerts_pb2.ListAlertsResponse(
            alerts=[
                alerts_pb2.Alert(
                    id=str(row.id),
                    kind=row.kind,
                    message=row.message,
                    balance=int(row.data.get("balance", 0)),
                    threshold=int(row.data.get("threshold", 0)),
                    created_at=to_timestamp(row.created_at),
                )
                for row in rows
            ]
        )

    async def SetAlertThreshold(
        self, request: alerts_pb2.SetAlertThresholdRequest, context: grpc.aio.ServicerContext
    ) -> alerts_pb2.SetAlertThresholdResponse:
        threshold, plan_default = await self._alerts.set_low_threshold(
            current_identity().user_id, None if request.use_plan_default else request.threshold
        )
        return alerts_pb2.SetAlertThresholdResponse(threshold=threshold, plan_default=plan_default)


class AlertInternalApi(alerts_pb2_grpc.AlertInternalServiceServicer):
    def __init__(self, alerts: Alerts) -> None:
        self._alerts = alerts

    async def SetTopUpThreshold(
        self, request: alerts_pb2.SetTopUpThresholdRequest, context: grpc.aio.ServicerContext
    ) -> alerts_pb2.SetTopUpThresholdResponse:
        await self._alerts.arm_topup(request.user_id, request.threshold)
        return alerts_pb2.SetTopUpThresholdResponse()

    async def RaiseAlert(
        self, request: alerts_pb2.RaiseAlertRequest, context: grpc.aio.ServicerContext
    ) -> alerts_pb2.RaiseAlertResponse:
        applied = await self._alerts.raise_alert(
            request.user_id, request.kind, request.message, request.source_key
        )
        return alerts_pb2.RaiseAlertResponse(applied=applied)

    async def PendingTopUps(
        self, request: alerts_pb2.PendingTopUpsRequest, context: grpc.aio.ServicerContext
    ) -> alerts_pb2.PendingTopUpsResponse:
        crossings = await self._alerts.pending_topups(request.limit)
        return alerts_pb2.PendingTopUpsResponse(
            crossings=[
                alerts_pb2.TopUpCrossing(
                    id=c.id, user_id=c.user_id, balance=c.balance, threshold=c.threshold
                )
                for c in crossings
            ]
        )

    async def FinishTopUp(
        self, request: alerts_pb2.FinishTopUpRequest, context: grpc.aio.ServicerContext
    ) -> alerts_pb2.FinishTopUpResponse:
        await self._alerts.finish_topup(request.id)
        return alerts_pb2.FinishTopUpResponse()

    async def WarnExpiring(
        self, request: alerts_pb2.WarnExpiringRequest, context: grpc.aio.ServicerContext
    ) -> alerts_pb2.WarnExpiringResponse:
        warned = await self._alerts.warn_expiring(request.within_hours, request.limit or 1000)
        return alerts_pb2.WarnExpiringResponse(warned=warned)
