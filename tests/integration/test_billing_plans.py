from __future__ import annotations

import grpc
import pytest

from studiox.billing.v1 import billing_pb2, billing_pb2_grpc
from tests.support.cluster import Cluster, internal_metadata


async def test_plans_are_seeded_by_migration(cluster: Cluster) -> None:
    stub = billing_pb2_grpc.BillingServiceStub(cluster.channel("billing"))
    reply = await stub.ListPlans(billing_pb2.ListPlansRequest(), timeout=5)
    plans = {p.id: p for p in reply.plans}
    assert reply.success
    assert [p.id for p in reply.plans] == ["free", "pro", "enterprise"]
    assert plans["free"].monthly_credits == 10
    assert list(plans["free"].features) == ["image_analysis", "video_generation"]
    assert plans["pro"].monthly_credits == 100
    assert "advanced_editing" in plans["pro"].features
    assert plans["enterprise"].is_unlimited
    assert all(p.currency == "usd" and p.interval == "month" for p in reply.plans)


async def test_internal_rpc_requires_the_service_credential(cluster: Cluster) -> None:
    stub = billing_pb2_grpc.BillingInternalServiceStub(cluster.channel("billing"))
    request = billing_pb2.GetPlanRequest(plan_id="pro")
    with pytest.raises(grpc.aio.AioRpcError) as anonymous:
        await stub.GetPlan(request, timeout=5)
    assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as wrong:
        await stub.GetPlan(request, metadata=(("x-internal-token", "guess"),), timeout=5)
    assert wrong.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as user:
        await stub.GetPlan(request, metadata=(("authorization", "Bearer x"),), timeout=5)
    assert user.value.code() == grpc.StatusCode.PERMISSION_DENIED

    reply = await stub.GetPlan(request, metadata=internal_metadata(), timeout=5)
    assert reply.plan.name == "Pro"


async def test_unknown_plan_is_not_found_with_error_info(cluster: Cluster) -> None:
    stub = billing_pb2_grpc.BillingInternalServiceStub(cluster.channel("billing"))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetPlan(
            billing_pb2.GetPlanRequest(plan_id="platinum"), metadata=internal_metadata(), timeout=5
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    trailers = dict(err.value.trailing_metadata() or ())
    assert trailers["x-error-reason"] == "NOT_FOUND"
    assert "grpc-status-details-bin" in trailers
