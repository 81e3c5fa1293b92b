"""Billing's internal API as the user service calls it: the plan catalog. One deadline per client;
failures arrive as domain errors (`services.kit.clients.call`)."""

from __future__ import annotations

from services.billing.domain import Plan
from services.kit.clients import ServiceClient
from studiox.billing.v1 import billing_pb2, billing_pb2_grpc


class BillingClient(ServiceClient[billing_pb2_grpc.BillingInternalServiceStub]):
    service = "billing"
    stub_type = billing_pb2_grpc.BillingInternalServiceStub

    async def plan(self, plan_id: str) -> Plan:
        """The catalog's plan (NotFound for a plan it does not list)."""
        request = billing_pb2.GetPlanRequest(plan_id=plan_id)
        plan = (await self._call(self._stub.GetPlan, request)).plan
        return Plan(
            id=plan.id,
            name=plan.name,
            price_cents=plan.price,
            currency=plan.currency,
            interval=plan.interval,
            monthly_credits=plan.monthly_credits,
            is_unlimited=plan.is_unlimited,
            features=tuple(plan.features),
        )
