"""Reservations against a real PostgreSQL and the real services: a hold takes the most a task can
cost, in the charge's one statement; settling keeps the measured cost (never above the hold) and
gives the rest back to the grants it came from, once, however often it is delivered."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from services.kit.errors import reason_of
from studiox.billing.v1 import billing_pb2, billing_pb2_grpc
from studiox.task.v1 import task_pb2, task_pb2_grpc
from tests.support.cluster import Cluster, internal_metadata
from tests.support.credit import FREE, CreditClient
from tests.support.tasks import TaskClient
from tests.support.tokens import DEFAULT_KEY, bearer


async def assert_verified(credit: CreditClient) -> None:
    report = await credit.verify()
    assert list(report.differences) == []


def grants(credits: object) -> dict[str, int]:
    return {g.category: g.remaining for g in credits.grants}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("cost", "charged", "returned", "uncharged"),
    [(2, 2, 10, 0), (12, 12, 0, 0), (30, 12, 0, 18)],
    ids=["below", "equal", "above"],
)
async def test_settling_keeps_the_cost_and_gives_the_rest_back_to_its_grants(
    credit: CreditClient, cost: int, charged: int, returned: int, uncharged: int
) -> None:
    user = await credit.open_account(FREE, purchased=20)  # 10 allowance + 20 purchased
    await credit.give(user, 3, "promotional", "promo")  # spent first
    await credit.charge(user, 12, "task:a", "video_generation", hold=True)  # 3 promo, 9 allowance
    held = await credit.account(user)
    assert (held.reserved_credits, held.available_credits, held.current_credits) == (12, 21, 21)

    reply = await credit.settle(user, "task:a", cost)

    assert (reply.charged, reply.returned, reply.uncharged, reply.applied) == (
        charged,
        returned,
        uncharged,
        True,
    )
    after = await credit.account(user)
    assert (after.reserved_credits, after.current_credits) == (0, 33 - charged)
    assert after.credits_used_this_month == charged
    # Given back last-spent first: the allowance before the promotional credits.
    expected = {"promotional": max(0, returned - 9), "allowance": 1 + min(returned, 9)}
    assert {k: v for k, v in grants(after).items() if k != "purchased"} == {
        k: v for k, v in expected.items() if v
    }
    await assert_verified(credit)


async def test_settle_delivered_20_times_at_once_settles_once(credit: CreditClient) -> None:
    user = await credit.open_account(FREE, purchased=20)
    await credit.charge(user, 11, "task:r", "video_generation", hold=True)

    replies = await asyncio.gather(*(credit.settle(user, "task:r", 5) for _ in range(20)))

    assert sum(r.applied for r in replies) == 1
    assert {(r.charged, r.returned) for r in replies} == {(5, 6)}
    account = await credit.account(user)
    assert (account.current_credits, account.reserved_credits) == (25, 0)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await credit.settle(user, "task:r", 7)  # the same key for another cost
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    await assert_verified(credit)


async def test_a_released_reservation_cannot_be_settled(credit: CreditClient) -> None:
    user = await credit.open_account(FREE)
    await credit.charge(user, 6, "task:x", "video_generation", hold=True)
    report = await credit.verify()
    assert report.open_reservations >= 1
    assert report.reserved_credits >= 6

    await credit.refund(user, "task:x", "refund:task:x")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await credit.settle(user, "task:x", 3)
    assert reason_of(err.value) == "INVALID_STATE"
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await credit.settle(user, "task:none", 3)
    assert missing.value.code() is grpc.StatusCode.NOT_FOUND
    account = await credit.account(user)
    assert (account.current_credits, account.reserved_credits) == (10, 0)
    await assert_verified(credit)


async def test_100_concurrent_creates_only_reservations_that_fit(
    cluster: Cluster, credit: CreditClient
) -> None:
    # 37 credits: 3 reservations of 11 fit (their final cost, 5 each, would fit 7 times).
    tasks = TaskClient(cluster.channel("task"), await credit.open_account(FREE, purchased=27))

    async def create() -> task_pb2.CreateTaskResponse | grpc.aio.AioRpcError:
        try:
            return await tasks.create("video_generation", durationSeconds=10)
        except grpc.aio.AioRpcError as err:
            return err

    results = await asyncio.gather(*(create() for _ in range(100)))
    created = [r for r in results if isinstance(r, task_pb2.CreateTaskResponse)]
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(created) == 3
    assert {reason_of(e) for e in refused} == {"INSUFFICIENT_CREDITS"}
    assert {(c.credit_deducted, c.task.credits_reserved) for c in created} == {(11, 11)}
    account = await credit.account(tasks.user)
    assert (account.reserved_credits, account.available_credits) == (33, 4)

    for reply in created:  # each worker made a 4-second clip: 5 credits
        task_id = reply.task.id
        await tasks.internal.ClaimPending(
            task_pb2.ClaimPendingRequest(limit=0), metadata=internal_metadata()
        )
        await _finish(tasks, task_id, seconds=4)
    account = await credit.account(tasks.user)
    assert (account.reserved_credits, account.current_credits) == (0, 37 - 15)
    assert {(await tasks.get(c.task.id)).credits_cost for c in created} == {5}
    await assert_verified(credit)


async def _finish(tasks: TaskClient, task_id: str, seconds: float) -> None:
    for status, usage in (("processing", {}), ("done", {"seconds": seconds})):
        await tasks.stub.UpdateStatus(
            task_pb2.UpdateStatusRequest(id=task_id, status=status, usage=usage),
            metadata=internal_metadata(),
        )


async def test_the_catalog_and_the_quote_show_the_price_rules(
    cluster: Cluster, credit: CreditClient
) -> None:
    stub = billing_pb2_grpc.BillingServiceStub(cluster.channel("billing"))
    prices = {p.type: p for p in (await stub.ListPrices(billing_pb2.ListPricesRequest())).prices}
    video = prices["video_generation"].rule
    assert (video.base, video.rate_per_unit, video.unit, video.input_field) == (
        1,
        "1",
        "seconds",
        "durationSeconds",
    )
    assert (video.maximum, video.flat_price) == (120, 5)
    flat = prices["advanced_editing"].rule
    assert (flat.base, flat.rate_per_unit, flat.unit, flat.maximum) == (3, "0", "", 3)

    user = await credit.open_account(FREE)
    quote = await task_pb2_grpc.TaskServiceStub(cluster.channel("task")).QuoteTask(
        task_pb2.QuoteTaskRequest(type="video_generation"), metadata=bearer(DEFAULT_KEY.mint(user))
    )
    assert (quote.cost, quote.rule) == (5, video)
