"""The credit ledger under concurrency, retries and misuse, against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import random

import grpc
import pytest

from services.kit.errors import reason_of
from studiox.credit.v1 import credit_pb2
from tests.support.cluster import internal_metadata
from tests.support.credit import ENTERPRISE, FREE, CreditClient


async def assert_ledger_verifies(credit: CreditClient) -> None:
    report = await credit.verify()
    assert list(report.differences) == []
    assert report.accounts_checked > 0


async def _settle(
    credit: CreditClient, user: str, costs: list[int]
) -> tuple[list[int], list[grpc.aio.AioRpcError]]:
    async def one(i: int, cost: int) -> int | grpc.aio.AioRpcError:
        try:
            await credit.charge(user, cost, key=f"race-{i}")
            return cost
        except grpc.aio.AioRpcError as err:
            return err

    results = await asyncio.gather(*(one(i, c) for i, c in enumerate(costs)))
    ok = [r for r in results if isinstance(r, int)]
    errors = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    return ok, errors


async def test_200_concurrent_charges_on_37_credits(credit: CreditClient) -> None:
    user = await credit.open_account(FREE, purchased=27)  # 10 allowance + 27 purchased
    assert (await credit.account(user)).current_credits == 37

    ok, errors = await _settle(credit, user, [1] * 200)

    assert len(ok) == 37
    assert len(errors) == 163
    assert {e.code() for e in errors} == {grpc.StatusCode.FAILED_PRECONDITION}
    assert {reason_of(e) for e in errors} == {"INSUFFICIENT_CREDITS"}
    assert "Insufficient credits. Required: 1, Available: 0" in {e.details() for e in errors}
    account = await credit.account(user)
    assert (account.current_credits, account.allowance_credits, account.purchased_credits) == (
        0,
        0,
        0,
    )
    assert account.credits_used_this_month == 37
    await assert_ledger_verifies(credit)


async def test_concurrent_mixed_costs_never_overspend(credit: CreditClient) -> None:
    user = await credit.open_account(FREE, purchased=40)  # 50 in all
    costs = [random.Random(7 + i).choice([1, 3, 5]) for i in range(120)]

    ok, errors = await _settle(credit, user, costs)

    account = await credit.account(user)
    assert account.current_credits == 50 - sum(ok)
    assert account.current_credits >= 0
    # Whatever is left is smaller than every refused cost (a refusal meant it truly did not fit).
    refused = [int(e.details().split("Required: ")[1].split(",")[0]) for e in errors]
    assert all(cost > account.current_credits for cost in refused)
    assert len(ok) + len(errors) == 120
    await assert_ledger_verifies(credit)


async def test_allowance_is_spent_before_purchased_credits(credit: CreditClient) -> None:
    user = await credit.open_account(FREE, purchased=20)
    reply = await credit.charge(user, 12, key="big")
    assert (reply.entry.allowance_delta, reply.entry.purchased_delta) == (-10, -2)
    assert reply.remaining_credits == 18
    account = await credit.account(user)
    assert (account.allowance_credits, account.purchased_credits) == (0, 18)


async def test_same_key_from_50_concurrent_callers_makes_one_entry(credit: CreditClient) -> None:
    user = await credit.open_account(FREE)
    replies = await asyncio.gather(*(credit.charge(user, 3, key="once") for _ in range(50)))

    assert len({r.entry.id for r in replies}) == 1
    assert sum(r.applied for r in replies) == 1
    account = await credit.account(user)
    assert account.current_credits == 7
    await assert_ledger_verifies(credit)


async def test_reused_key_with_other_parameters_is_refused(credit: CreditClient) -> None:
    user = await credit.open_account(FREE)
    await credit.charge(user, 1, key="k")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await credit.charge(user, 2, key="k")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (await credit.account(user)).current_credits == 9


async def test_feature_outside_the_plan_is_refused(credit: CreditClient) -> None:
    user = await credit.open_account(FREE)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await credit.charge(user, 3, key="adv", feature="advanced_editing")
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert reason_of(err.value) == "FEATURE_NOT_IN_PLAN"
    assert (await credit.account(user)).current_credits == 10


async def test_unlimited_plans_record_usage_without_reducing_balance(credit: CreditClient) -> None:
    user = await credit.open_account(ENTERPRISE, purchased=5)
    for i in range(30):
        reply = await credit.charge(user, 5, key=f"e{i}", feature="advanced_editing")
        assert reply.entry.amount == 0
        assert reply.entry.usage == 5
    account = await credit.account(user)
    assert account.is_unlimited
    assert account.current_credits == 5
    assert account.credits_used_this_month == 150
    refund = await credit.refund(user, "e0", key="r-e0")
    assert refund.entry.usage == -5
    assert (await credit.account(user)).credits_used_this_month == 145
    await assert_ledger_verifies(credit)


async def test_refund_returns_exactly_what_was_charged_once(credit: CreditClient) -> None:
    user = await credit.open_account(FREE, purchased=5)
    await credit.charge(user, 12, key="task-1")  # 10 allowance + 2 purchased
    first = await credit.refund(user, "task-1", key="refund:task-1")
    again = await credit.refund(user, "task-1", key="refund:task-1")
    assert first.applied
    assert not again.applied
    assert again.entry.id == first.entry.id
    assert (first.entry.allowance_delta, first.entry.purchased_delta) == (10, 2)
    account = await credit.account(user)
    assert (account.allowance_credits, account.purchased_credits) == (10, 5)

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await credit.refund(user, "task-1", key="refund-2:task-1")
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason_of(err.value) == "INVALID_STATE"
    await assert_ledger_verifies(credit)


async def test_concurrent_refunds_never_exceed_the_charge(credit: CreditClient) -> None:
    user = await credit.open_account(FREE)
    await credit.charge(user, 6, key="c")

    async def partial(i: int) -> bool:
        try:
            await credit.refund(user, "c", key=f"r{i}", amount=1)
            return True
        except grpc.aio.AioRpcError:
            return False

    results = await asyncio.gather(*(partial(i) for i in range(20)))
    assert sum(results) == 6
    assert (await credit.account(user)).current_credits == 10
    await assert_ledger_verifies(credit)


async def test_refund_needs_an_existing_charge(credit: CreditClient) -> None:
    user = await credit.open_account(FREE)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await credit.refund(user, "never-charged", key="r")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    await credit.grant(user, 5, credit_pb2.BUCKET_PURCHASED, key="g")
    with pytest.raises(grpc.aio.AioRpcError) as not_a_charge:
        await credit.refund(user, "g", key="r2")
    assert not_a_charge.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    "request_",
    [
        credit_pb2.ChargeRequest(user_id="u", amount=0, idempotency_key="k"),
        credit_pb2.ChargeRequest(user_id="u", amount=-3, idempotency_key="k"),
        credit_pb2.ChargeRequest(user_id="u", amount=1, idempotency_key=""),
        credit_pb2.ChargeRequest(user_id="", amount=1, idempotency_key="k"),
        credit_pb2.ChargeRequest(user_id="u", amount=1, idempotency_key="k" * 201),
    ],
)
async def test_bad_charge_requests_are_invalid(
    credit: CreditClient, request_: credit_pb2.ChargeRequest
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await credit.stub.Charge(request_, metadata=internal_metadata())
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_charge_on_a_missing_account_is_not_found(credit: CreditClient) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await credit.charge("user_nobody", 1, key="k")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_grant_is_idempotent(credit: CreditClient) -> None:
    user = await credit.open_account(FREE)
    await asyncio.gather(
        *(credit.grant(user, 50, credit_pb2.BUCKET_PURCHASED, key="stripe:cs_1") for _ in range(20))
    )
    assert (await credit.account(user)).purchased_credits == 50
