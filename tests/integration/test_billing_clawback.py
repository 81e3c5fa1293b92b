"""Stripe takes money back, credits go back: refunds (partial, full) and disputes (opened, won)
claw back the purchase's credits exactly once, however the events are redelivered or ordered;
the payment history shows it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from devstack.stripe_emulator import PM_VISA
from tests.support.billing import BillingClient, events_counted
from tests.support.cluster import Cluster
from tests.support.credit import CreditClient


@pytest.fixture
def credit(paid_cluster: Cluster) -> CreditClient:
    return CreditClient(paid_cluster.channel("credit"))


async def _redeliver(billing: BillingClient, events: list[dict[str, Any]], times: int) -> None:
    """Every event `times` times, all at once (Stripe retries, concurrent deliveries)."""
    await asyncio.gather(*(billing.deliver(e) for e in events for _ in range(times)))


def _clawbacks(cluster: Cluster, user: str) -> list[tuple[str, int, int]]:
    return [
        (kind, amount, owed)
        for kind, amount, owed in cluster.sql(
            "SELECT kind, amount, owed_delta FROM credit.entries WHERE user_id = %s "
            "AND kind IN ('clawback', 'reinstate') ORDER BY id",
            user,
        )
    ]


async def test_partial_then_full_refund_claws_back_once_and_leaves_a_debt(
    billing: BillingClient, credit: CreditClient, paid_cluster: Cluster
) -> None:
    user = await billing.signup()
    bought = await billing.purchase(user, pack_id="credits_100", payment_method_id=PM_VISA)
    assert bought.status == "succeeded"
    await credit.charge(user, 30, key="spend")  # allowance 10, purchased 20: 80 left
    billing.stripe.take_events()

    half = billing.stripe.refund_payment(bought.payment_intent_id, 1750)
    assert [e["type"] for e in half] == ["refund.created", "charge.refunded"]
    await _redeliver(billing, half, 5)
    account = await credit.account(user)
    assert (account.current_credits, account.owed_credits) == (30, 0)
    history = (await billing.history(user)).payments
    assert [(p.status, p.refunded_amount, p.credits_clawed_back) for p in history] == [
        ("partially_refunded", 1750, 50)
    ]

    rest = billing.stripe.refund_payment(bought.payment_intent_id)
    await _redeliver(billing, [*rest, *half], 3)  # late duplicates of the first refund too
    account = await credit.account(user)
    assert (account.current_credits, account.owed_credits) == (0, 20)
    assert _clawbacks(paid_cluster, user) == [("clawback", -50, 0), ("clawback", -30, 20)]
    history = (await billing.history(user)).payments
    assert [(p.status, p.refunded_amount, p.credits_clawed_back) for p in history] == [
        ("refunded", 3500, 100)
    ]

    # The next purchase pays the debt first.
    await billing.purchase(user, pack_id="credits_50", payment_method_id=PM_VISA)
    account = await credit.account(user)
    assert (account.current_credits, account.owed_credits) == (30, 0)
    assert list((await credit.verify()).differences) == []


async def test_a_dispute_takes_the_credits_and_a_won_one_gives_them_back(
    billing: BillingClient, credit: CreditClient, paid_cluster: Cluster
) -> None:
    user = await billing.signup()
    started = await billing.purchase(user, pack_id="credits_50")
    billing.stripe.take_events()
    await billing.deliver_all(billing.stripe.complete_checkout(started.session_id))
    intent = billing.stripe.sessions[started.session_id]["payment_intent"]
    assert (await credit.account(user)).current_credits == 60

    opened = billing.stripe.open_dispute(intent)
    await _redeliver(billing, opened, 4)
    assert (await credit.account(user)).current_credits == 10
    [payment] = (await billing.history(user)).payments
    assert (payment.status, payment.dispute_status, payment.credits_clawed_back) == (
        "disputed",
        "needs_response",
        50,
    )

    won = billing.stripe.close_dispute(
        billing.stripe.charges[billing.stripe.intents[intent]["latest_charge"]]["dispute"], won=True
    )
    await _redeliver(billing, [*won, *opened], 3)
    assert (await credit.account(user)).current_credits == 60
    [payment] = (await billing.history(user)).payments
    assert (payment.status, payment.dispute_status, payment.credits_clawed_back) == (
        "succeeded",
        "won",
        0,
    )
    assert _clawbacks(paid_cluster, user) == [("clawback", -50, 0), ("reinstate", 50, 0)]
    assert list((await credit.verify()).differences) == []


async def test_a_refund_reported_before_the_payment_grants_and_claws_back_once(
    billing: BillingClient, credit: CreditClient, paid_cluster: Cluster
) -> None:
    user = await billing.signup()
    started = await billing.purchase(user, pack_id="credits_50")
    billing.stripe.take_events()
    paid = billing.stripe.complete_checkout(started.session_id)
    intent = billing.stripe.sessions[started.session_id]["payment_intent"]
    refunded = billing.stripe.refund_payment(intent)

    await billing.deliver_all(refunded)  # the refund arrives first
    assert (await credit.account(user)).current_credits == 10
    await _redeliver(billing, [*paid, *refunded], 2)
    assert (await credit.account(user)).current_credits == 10
    grants = paid_cluster.scalar(
        "SELECT count(*) FROM credit.entries WHERE user_id = %s AND idempotency_key = %s",
        user,
        f"stripe:checkout:{started.session_id}",
    )
    assert grants == 1
    [payment] = (await billing.history(user)).payments
    assert (payment.status, payment.credits_clawed_back) == ("refunded", 50)


async def test_refunds_of_payments_that_are_not_purchases_are_ignored(
    billing: BillingClient,
) -> None:
    before = events_counted("charge.dispute.created", "refused")
    event = billing.stripe.event(
        "charge.dispute.created",
        {"id": "dp_x", "object": "dispute", "charge": "ch_unknown", "status": "needs_response"},
    )
    assert (await billing.deliver(event)).received
    assert events_counted("charge.dispute.created", "refused") == before + 1
