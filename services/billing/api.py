"""Billing servicers: proto <-> domain translation only."""

from __future__ import annotations

import grpc

from services.billing import store
from services.billing.domain import Plan
from services.kit.access import Access
from services.kit.db import Database
from services.kit.errors import InvalidInput, NotFound
from services.kit.server import ServiceSpec
from services.kit.settings import Settings
from services.kit.spec import database_service
from studiox.billing.v1 import billing_pb2, billing_pb2_grpc

ACCESS = {
    "BillingService/ListPlans": Access.PUBLIC,
    # Authenticated by its Stripe signature, not a user token.
    "BillingService/HandleWebhook": Access.PUBLIC,
}


def plan_to_proto(plan: Plan) -> billing_pb2.Plan:
    return billing_pb2.Plan(
        id=plan.id,
        name=plan.name,
        price=plan.price_cents,
        currency=plan.currency,
        interval=plan.interval,
        monthly_credits=plan.monthly_credits,
        is_unlimited=plan.is_unlimited,
        features=plan.features,
    )


class BillingApi(billing_pb2_grpc.BillingServiceServicer):
    def __init__(self, db: Database) -> None:
        self._db = db

    async def ListPlans(
        self, request: billing_pb2.ListPlansRequest, context: grpc.aio.ServicerContext
    ) -> billing_pb2.ListPlansResponse:
        async with self._db.session() as session:
            plans = await store.list_plans(session)
        return billing_pb2.ListPlansResponse(success=True, plans=[plan_to_proto(p) for p in plans])


class BillingInternalApi(billing_pb2_grpc.BillingInternalServiceServicer):
    def __init__(self, db: Database) -> None:
        self._db = db

    async def GetPlan(
        self, request: billing_pb2.GetPlanRequest, context: grpc.aio.ServicerContext
    ) -> billing_pb2.GetPlanResponse:
        if not request.plan_id:
            raise InvalidInput("planId is required")
        async with self._db.session() as session:
            plan = await store.get_plan(session, request.plan_id.lower())
        if plan is None:
            raise NotFound(f"Unknown plan: {request.plan_id}")
        return billing_pb2.GetPlanResponse(plan=plan_to_proto(plan))


def build_spec(settings: Settings) -> ServiceSpec:
    services = billing_pb2.DESCRIPTOR.services_by_name
    return database_service(
        "billing",
        settings,
        lambda db, channels: [
            (
                billing_pb2_grpc.add_BillingServiceServicer_to_server,
                BillingApi(db),
                services["BillingService"].full_name,
            ),
            (
                billing_pb2_grpc.add_BillingInternalServiceServicer_to_server,
                BillingInternalApi(db),
                services["BillingInternalService"].full_name,
            ),
        ],
        access=ACCESS,
    )
