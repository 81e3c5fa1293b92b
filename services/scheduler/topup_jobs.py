"""The scheduler's jobs of issue 16: handing each crossing of a top-up threshold (recorded by the
credit service in the charge's transaction) to billing, and the one warning per grant about to
expire. Both are safe to repeat: billing keys the top-up by the crossing, the credit service keys
warnings by grant."""

from __future__ import annotations

import logging

import grpc

from services.kit.clients import ServiceChannels
from services.kit.errors import DomainError, domain_error
from studiox.billing.v1 import auto_top_up_pb2, auto_top_up_pb2_grpc
from studiox.credit.v1 import alerts_pb2, alerts_pb2_grpc

log = logging.getLogger("studiox.scheduler")

CALL_TIMEOUT_SECONDS = 30.0
CROSSINGS_PER_RUN = 100


class TopUpJobs:
    def __init__(self, channels: ServiceChannels, *, warn_within_hours: int) -> None:
        self._channels = channels
        self._warn_within_hours = warn_within_hours

    # Stubs are made on use: gRPC aio channels belong to the event loop they are created in.
    @property
    def _alerts(self) -> alerts_pb2_grpc.AlertInternalServiceStub:
        return alerts_pb2_grpc.AlertInternalServiceStub(self._channels.channel("credit"))

    @property
    def _billing(self) -> auto_top_up_pb2_grpc.AutoTopUpInternalServiceStub:
        return auto_top_up_pb2_grpc.AutoTopUpInternalServiceStub(self._channels.channel("billing"))

    async def auto_top_up(self) -> dict[str, int]:
        """Each open crossing to billing, then marked done; one that fails stays open for the next
        run (billing's answer for a crossing is the same however often it is asked)."""
        reply = await self._alerts.PendingTopUps(
            alerts_pb2.PendingTopUpsRequest(limit=CROSSINGS_PER_RUN), timeout=CALL_TIMEOUT_SECONDS
        )
        counts = {"crossings": len(reply.crossings), "done": 0, "retry": 0}
        for crossing in reply.crossings:
            try:
                result = await self._billing.RunTopUp(
                    auto_top_up_pb2.RunTopUpRequest(
                        user_id=crossing.user_id, crossing_id=crossing.id
                    ),
                    timeout=CALL_TIMEOUT_SECONDS,
                )
            except grpc.aio.AioRpcError as err:
                error: DomainError = domain_error(err)
                log.warning("top-up of crossing %s not done: %s", crossing.id, error.message)
                counts["retry"] += 1
                continue
            if result.outcome == "pending":
                counts["retry"] += 1  # the payment is on its way: asked again next run
                continue
            await self._alerts.FinishTopUp(
                alerts_pb2.FinishTopUpRequest(id=crossing.id), timeout=CALL_TIMEOUT_SECONDS
            )
            counts["done"] += 1
            counts[result.outcome] = counts.get(result.outcome, 0) + 1
        return counts

    async def grant_warnings(self) -> dict[str, int]:
        reply = await self._alerts.WarnExpiring(
            alerts_pb2.WarnExpiringRequest(within_hours=self._warn_within_hours, limit=1000),
            timeout=CALL_TIMEOUT_SECONDS,
        )
        return {"warned": reply.warned}
