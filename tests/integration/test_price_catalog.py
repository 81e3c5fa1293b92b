"""The price catalog and the quote: the costs creation charges and the plans whose features the
ledger checks, from one source; a quote answers like a charge would, and charges nothing."""

from __future__ import annotations

import grpc
import pytest

from services.task.domain import TASK_COSTS
from studiox.billing.v1 import billing_pb2, billing_pb2_grpc
from studiox.task.v1 import task_pb2, task_pb2_grpc
from tests.support.cluster import Cluster
from tests.support.credit import FREE, CreditClient
from tests.support.tasks import TaskClient
from tests.support.tokens import DEFAULT_KEY, bearer


async def test_the_catalog_lists_each_types_cost_and_plans(cluster: Cluster) -> None:
    stub = billing_pb2_grpc.BillingServiceStub(cluster.channel("billing"))
    reply = await stub.ListPrices(billing_pb2.ListPricesRequest(), timeout=10)
    prices = {p.type: (p.cost, list(p.plans)) for p in reply.prices}
    assert prices == {
        "image_analysis": (1, ["free", "pro", "enterprise"]),
        "video_generation": (5, ["free", "pro", "enterprise"]),
        "advanced_editing": (3, ["pro", "enterprise"]),
    }
    assert {t: c for t, (c, _) in prices.items()} == TASK_COSTS


async def test_a_quote_answers_like_the_charge_and_charges_nothing(
    cluster: Cluster, credit: CreditClient
) -> None:
    user = await credit.open_account(FREE)
    stub = task_pb2_grpc.TaskServiceStub(cluster.channel("task"))
    md = bearer(DEFAULT_KEY.mint(user))

    async def quote(task_type: str) -> task_pb2.QuoteTaskResponse:
        return await stub.QuoteTask(task_pb2.QuoteTaskRequest(type=task_type), metadata=md)

    ok = await quote("video_generation")
    assert (ok.allowed, ok.cost, ok.available_credits, ok.plan_name, ok.reason) == (
        True,
        5,
        10,
        "free",
        "",
    )
    outside = await quote("advanced_editing")
    assert (outside.allowed, outside.reason, outside.cost) == (False, "feature_not_in_plan", 3)
    assert outside.message == "advanced_editing is not included in the free plan"

    tasks = TaskClient(cluster.channel("task"), user)
    created = await tasks.create("video_generation")
    assert created.task.credits_cost == ok.cost
    await tasks.create("video_generation")
    short = await quote("video_generation")
    assert (short.allowed, short.reason, short.available_credits) == (
        False,
        "insufficient_credits",
        0,
    )
    assert short.message == "Insufficient credits. Required: 5, Available: 0"
    charges = cluster.scalar(
        "SELECT count(*) FROM credit.entries WHERE user_id = %s AND kind = 'charge'", user
    )
    assert charges == 2  # the quotes charged nothing

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await quote("hologram")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as anonymous:
        await stub.QuoteTask(task_pb2.QuoteTaskRequest(type="image_analysis"))
    assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
