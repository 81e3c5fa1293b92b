"""Billing's internal API (the plan catalog) in memory, as the user service calls it."""

from __future__ import annotations

from typing import Any

from services.kit.errors import NotFound
from studiox.billing.v1 import billing_pb2
from tests.support.fakes.channels import FakeService
from tests.support.fakes.journal import Journal

FEATURES = ("image_analysis", "video_generation", "advanced_editing")
PLANS = {
    "free": billing_pb2.Plan(
        id="free", name="Free", monthly_credits=10, features=("image_analysis",), interval="month"
    ),
    "pro": billing_pb2.Plan(
        id="pro", name="Pro", price=2900, monthly_credits=100, features=FEATURES, interval="month"
    ),
}


class FakeCatalog(FakeService):
    name = "billing"

    def __init__(self, journal: Journal | None = None) -> None:
        super().__init__(journal)
        self.plans = {
            plan_id: billing_pb2.Plan.FromString(p.SerializeToString())
            for plan_id, p in PLANS.items()
        }

    async def GetPlan(self, request: billing_pb2.GetPlanRequest) -> Any:
        plan = self.plans.get(request.plan_id)
        if plan is None:
            raise NotFound(f"Unknown plan: {request.plan_id}")
        return billing_pb2.GetPlanResponse(plan=plan)
