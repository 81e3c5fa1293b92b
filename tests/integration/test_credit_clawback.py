"""Credits taken back when Stripe returns a payment's money: from the purchase's grant, then the
rest of the balance, then owed (settled first by whatever comes in next); by state, so a repeat
changes nothing; and given back when a dispute is won."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from studiox.credit.v1 import credit_pb2
from tests.integration.test_credit_grants import by_key, touched
from tests.integration.test_credit_ledger import assert_ledger_verifies
from tests.support.cluster import Cluster, internal_metadata
from tests.support.credit import FREE, CreditClient


async def _bought(credit: CreditClient, credits: int, key: str = "stripe:pi:pi_1") -> str:
    user = await credit.open_account(FREE)
    await credit.grant(user, credits, credit_pb2.BUCKET_PURCHASED, key=key)
    return user


async def test_a_partial_then_full_clawback_takes_the_purchase_back_once(
    cluster: Cluster, credit: CreditClient
) -> None:
    user = await _bought(credit, 100)
    grant = by_key(cluster, user, "stripe:pi:pi_1")

    half = await credit.clawback(user, "stripe:pi:pi_1", 50)
    assert (half.applied, half.clawed_credits, half.owed_credits) == (True, 50, 0)
    assert half.entry.type == "clawback"
    assert touched(half.entry) == {grant.id: -50}
    again = await asyncio.gather(*(credit.clawback(user, "stripe:pi:pi_1", 50) for _ in range(10)))
    assert not any(r.applied for r in again)
    full = await credit.clawback(user, "stripe:pi:pi_1", 100)
    assert full.remaining_credits == 10  # the allowance is untouched: the grant had enough
    assert (await credit.account(user)).purchased_credits == 0
    assert (
        cluster.scalar(
            "SELECT count(*) FROM credit.entries WHERE user_id = %s AND kind = 'clawback'", user
        )
        == 2
    )
    await assert_ledger_verifies(credit)


async def test_spent_credits_come_from_the_balance_then_are_owed_and_settled_by_the_next_grant(
    cluster: Cluster, credit: CreditClient
) -> None:
    user = await _bought(credit, 50)
    await credit.charge(user, 55, key="spent")  # allowance 10 + purchased 45: 5 left of it
    grant = by_key(cluster, user, "stripe:pi:pi_1")

    reply = await credit.clawback(user, "stripe:pi:pi_1", 50)
    assert touched(reply.entry) == {grant.id: -5}
    assert (reply.owed_credits, reply.remaining_credits) == (45, 0)
    assert reply.entry.owed_delta == 45
    account = await credit.account(user)
    assert (account.current_credits, account.owed_credits) == (0, 45)

    # A refund of an earlier charge settles the debt first.
    refunded = await credit.refund(user, "spent", key="refund:spent", amount=5)
    assert (refunded.entry.amount, refunded.entry.owed_delta) == (0, -5)
    # So does the next grant: 100 purchased, 40 of which pay what is left owed.
    granted = await credit.stub.Grant(
        credit_pb2.GrantRequest(
            user_id=user, amount=100, category="purchased", idempotency_key="stripe:pi:pi_2"
        ),
        metadata=internal_metadata(),
    )
    assert (granted.entry.amount, granted.entry.owed_delta) == (60, -40)
    assert granted.entry.type == "credit_purchase"
    account = await credit.account(user)
    assert (account.current_credits, account.owed_credits) == (60, 0)
    await assert_ledger_verifies(credit)


async def test_a_won_dispute_gives_the_credits_back(cluster: Cluster, credit: CreditClient) -> None:
    user = await _bought(credit, 20)
    await credit.charge(user, 25, key="spent")  # allowance 10, purchased 15: 5 left
    taken = await credit.clawback(user, "stripe:pi:pi_1", 20)
    assert (taken.owed_credits, taken.remaining_credits) == (15, 0)

    back = await credit.clawback(user, "stripe:pi:pi_1", 0)
    assert back.entry.type == "reinstatement"
    assert (back.entry.owed_delta, back.entry.amount) == (-15, 5)
    account = await credit.account(user)
    assert (account.current_credits, account.owed_credits) == (5, 0)
    assert not (await credit.clawback(user, "stripe:pi:pi_1", 0)).applied
    await assert_ledger_verifies(credit)


async def test_a_purchase_made_before_grants_existed_can_be_clawed_back(
    cluster: Cluster, credit: CreditClient
) -> None:
    """Unknown keys are a NOT_FOUND; the migration gives every earlier purchase its own grant
    (tests/integration/test_credit_migration.py), found by the same key."""
    user = await _bought(credit, 10, key="stripe:checkout:cs_new")
    reply = await credit.clawback(user, "stripe:checkout:cs_new", 10)
    assert reply.applied
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await credit.clawback(user, "stripe:checkout:cs_unknown", 10)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
