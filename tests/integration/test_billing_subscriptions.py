"""Plan changes through Stripe subscriptions: the credit account's terms change only when Stripe
confirms (signed events), renewals reset the allowance on Stripe's billing period, a downgrade to
Free happens at the period's end, and late or out-of-order events cannot put back an older state."""

from __future__ import annotations

import asyncio
import secrets

import grpc
import pytest

from devstack.stripe_emulator import PRICE_ENTERPRISE, PRICE_PRO
from tests.support.billing import (
    BillingClient,
    customer_of,
    open_session_at_stripe,
    status_of,
)
from tests.support.cluster import Cluster
from tests.support.credit import CreditClient


@pytest.fixture
def credit(paid_cluster: Cluster) -> CreditClient:
    return CreditClient(paid_cluster.channel("credit"))


async def subscribe(billing: BillingClient, user: str, plan: str = "pro") -> str:
    """Upgrade through Checkout and deliver what Stripe sends; returns the subscription id."""
    started = await billing.change_plan(user, plan)
    assert (started.status, started.plan_name) == ("checkout", plan)
    billing.stripe.take_events()
    await billing.deliver_all(billing.stripe.complete_checkout(started.session_id))
    return str(billing.stripe.sessions[started.session_id]["subscription"])


def period_end(billing: BillingClient, sub_id: str) -> int:
    return int(billing.stripe.subscriptions[sub_id]["items"]["data"][0]["current_period_end"])


def _entries(cluster: Cluster, user: str) -> int:
    return cluster.scalar("SELECT count(*) FROM credit.entries WHERE user_id = %s", user)


async def test_upgrade_to_pro_applies_only_after_stripe_confirms(
    billing: BillingClient, credit: CreditClient
) -> None:
    user = await billing.signup()
    started = await billing.change_plan(user, "Pro")
    assert started.success
    assert started.status == "checkout"
    assert started.checkout_url.endswith(started.session_id)
    session = billing.stripe.sessions[started.session_id]
    assert session["mode"] == "subscription"
    assert session["_line_items"] == [{"price": PRICE_PRO, "quantity": "1"}]
    before = await credit.account(user)
    assert (before.plan_name, before.current_credits) == ("free", 10)

    events = billing.stripe.complete_checkout(started.session_id)
    # The checkout completion alone is enough (the other events may come later, in any order).
    await billing.deliver(next(e for e in events if e["type"] == "checkout.session.completed"))
    account = await credit.account(user)
    assert (account.plan_name, account.monthly_allowance) == ("pro", 100)
    assert (account.allowance_credits, account.current_credits) == (100, 100)
    sub_id = str(billing.stripe.sessions[started.session_id]["subscription"])
    assert account.credit_reset_at.seconds == period_end(billing, sub_id)

    await billing.deliver_all(events)  # subscription.created and invoice.paid: same period
    again = await credit.account(user)
    assert (again.plan_name, again.allowance_credits) == ("pro", 100)
    history = await billing.history(user)
    assert [(p.kind, p.plan_name, p.amount, p.status) for p in history.payments] == [
        ("subscription", "pro", 1999, "succeeded")
    ]


async def test_the_users_alias_and_plan_names_are_accepted(billing: BillingClient) -> None:
    user = await billing.signup()
    for name in ("enterprise", "ENTERPRISE", " Enterprise "):
        started = await billing.change_plan(user, name)
        assert started.plan_name == "enterprise"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await billing.change_plan(user, "platinum")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "free, pro, enterprise" in (err.value.details() or "")


async def test_renewal_resets_the_allowance_on_stripes_billing_period(
    billing: BillingClient, credit: CreditClient, paid_cluster: Cluster
) -> None:
    user = await billing.signup()
    sub_id = await subscribe(billing, user)
    await credit.charge(user, 30, key="spend-1")
    assert (await credit.account(user)).allowance_credits == 70

    renewal = billing.stripe.renew(sub_id)
    await billing.deliver_all(renewal)
    account = await credit.account(user)
    assert (account.plan_name, account.allowance_credits, account.credits_used_this_month) == (
        "pro",
        100,
        0,
    )
    assert account.credit_reset_at.seconds == period_end(billing, sub_id)
    entries = _entries(paid_cluster, user)
    await billing.deliver_all([*renewal, *renewal])  # redelivered: nothing more
    assert _entries(paid_cluster, user) == entries
    assert list((await credit.verify()).differences) == []
    history = await billing.history(user)
    assert [p.status for p in history.payments] == ["succeeded", "succeeded"]


async def test_downgrade_to_free_happens_at_the_end_of_the_period(
    billing: BillingClient, credit: CreditClient
) -> None:
    user = await billing.signup()
    sub_id = await subscribe(billing, user)
    end = period_end(billing, sub_id)

    scheduled = await billing.change_plan(user, "free")
    assert (scheduled.status, scheduled.plan_name) == ("cancel_at_period_end", "free")
    assert scheduled.effective_at.seconds == end
    assert billing.stripe.subscriptions[sub_id]["cancel_at_period_end"] is True
    await billing.deliver_pending()  # customer.subscription.updated (cancel_at_period_end)
    still = await credit.account(user)
    assert (still.plan_name, still.allowance_credits) == ("pro", 100)
    again = await billing.change_plan(user, "free")  # asking twice changes nothing
    assert again.effective_at.seconds == end

    await billing.deliver_all(billing.stripe.end_period(sub_id))
    account = await credit.account(user)
    assert (account.plan_name, account.monthly_allowance, account.allowance_credits) == (
        "free",
        10,
        10,
    )
    assert not account.is_unlimited
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await billing.change_plan(user, "free")
    assert status_of(err.value) == (grpc.StatusCode.FAILED_PRECONDITION, "INVALID_STATE")


async def test_a_scheduled_downgrade_can_be_undone(
    billing: BillingClient, credit: CreditClient
) -> None:
    user = await billing.signup()
    sub_id = await subscribe(billing, user)
    await billing.change_plan(user, "free")
    resumed = await billing.change_plan(user, "pro")
    assert resumed.status == "resumed"
    assert billing.stripe.subscriptions[sub_id]["cancel_at_period_end"] is False
    await billing.deliver_pending()
    assert (await credit.account(user)).plan_name == "pro"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await billing.change_plan(user, "pro")
    assert status_of(err.value) == (grpc.StatusCode.FAILED_PRECONDITION, "INVALID_STATE")


async def test_pro_to_enterprise_updates_the_subscription_with_proration(
    billing: BillingClient, credit: CreditClient
) -> None:
    user = await billing.signup()
    sub_id = await subscribe(billing, user)
    sessions = len(billing.stripe.sessions)
    started = await billing.change_plan(user, "enterprise")
    assert started.status == "pending"
    assert len(billing.stripe.sessions) == sessions  # no second subscription
    update = next(w for w in reversed(billing.stripe.writes()) if w.path.endswith(sub_id))
    assert update.params["items"][0]["price"] == PRICE_ENTERPRISE
    assert update.params["proration_behavior"] == "always_invoice"
    assert (await credit.account(user)).plan_name == "pro"  # until Stripe confirms

    await billing.deliver_pending()  # invoice.paid (proration), customer.subscription.updated
    account = await credit.account(user)
    assert (account.plan_name, account.is_unlimited) == ("enterprise", True)
    assert account.credit_reset_at.seconds == period_end(billing, sub_id)
    history = await billing.history(user)
    assert [(p.plan_name, p.amount) for p in history.payments] == [
        ("enterprise", 9999 - 1999),
        ("pro", 1999),
    ]


async def test_a_failed_renewal_is_recorded_and_the_plan_stays_until_stripe_cancels(
    billing: BillingClient, credit: CreditClient
) -> None:
    user = await billing.signup()
    sub_id = await subscribe(billing, user)
    await billing.deliver_all(billing.stripe.fail_renewal(sub_id))
    account = await credit.account(user)
    assert account.plan_name == "pro"
    history = await billing.history(user)
    assert [p.status for p in history.payments] == ["failed", "succeeded"]

    await billing.deliver_all(billing.stripe.cancel_now(sub_id))  # Stripe gives up
    assert (await credit.account(user)).plan_name == "free"


async def test_late_and_out_of_order_events_cannot_restore_an_older_state(
    billing: BillingClient, credit: CreditClient, paid_cluster: Cluster
) -> None:
    user = await billing.signup()
    started = await billing.change_plan(user, "pro")
    events = billing.stripe.complete_checkout(started.session_id)
    sub_id = str(billing.stripe.sessions[started.session_id]["subscription"])
    # Stripe cancels before any of the checkout's events got through...
    deleted = billing.stripe.cancel_now(sub_id)
    await billing.deliver_all(deleted)
    # ...then the older events arrive: each is checked against the subscription's state now.
    await billing.deliver_all(reversed(events))
    stale = billing.stripe.event(
        "customer.subscription.updated",
        {**billing.stripe.subscriptions[sub_id], "status": "active"},
        created=deleted[0]["created"] - 60,
    )
    await billing.deliver(stale)
    account = await credit.account(user)
    assert (account.plan_name, account.current_credits) == ("free", 10)
    assert _entries(paid_cluster, user) == 1  # only the sign-up grant


async def test_an_account_is_placed_once_per_period_whatever_the_delivery_order(
    billing: BillingClient, credit: CreditClient, paid_cluster: Cluster
) -> None:
    user = await billing.signup()
    started = await billing.change_plan(user, "pro")
    events = billing.stripe.complete_checkout(started.session_id)
    await billing.deliver_all(reversed(events))
    await billing.deliver_all(events)
    account = await credit.account(user)
    assert (account.plan_name, account.allowance_credits) == ("pro", 100)
    # The sign-up grant, then one expiry and one grant for the placement.
    assert _entries(paid_cluster, user) == 3


async def test_stripes_state_not_the_webhooks_decides_how_to_change_plans(
    billing: BillingClient, credit: CreditClient
) -> None:
    """Paid at Stripe, events still on their way: asking again is not a second subscription."""
    user = await billing.signup()
    started = await billing.change_plan(user, "pro")
    billing.stripe.complete_checkout(started.session_id)  # nothing delivered yet
    sessions = len(billing.stripe.sessions)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await billing.change_plan(user, "pro")
    assert status_of(err.value) == (grpc.StatusCode.FAILED_PRECONDITION, "INVALID_STATE")
    assert (await billing.change_plan(user, "enterprise")).status == "pending"
    assert len(billing.stripe.sessions) == sessions
    assert (await credit.account(user)).plan_name == "free"  # nothing confirmed to us yet
    await billing.deliver_pending()
    assert (await credit.account(user)).plan_name == "enterprise"


# --- allowance only for paid periods ---


async def test_a_failed_renewal_grants_no_allowance_until_its_invoice_is_paid(
    billing: BillingClient, credit: CreditClient, paid_cluster: Cluster
) -> None:
    user = await billing.signup()
    sub_id = await subscribe(billing, user)
    await credit.charge(user, 30, key="spend-before-renewal")
    grants = (
        "SELECT count(*) FROM credit.entries WHERE user_id = %s AND kind = 'grant' AND amount > 0"
    )
    granted = paid_cluster.scalar(grants, user)

    await billing.deliver_all(billing.stripe.fail_renewal(sub_id))
    unpaid = await credit.account(user)
    # Still Pro (features), but the unpaid period has no allowance, and the monthly allowance is 0
    # until it is paid, so no reset refills it either.
    assert (unpaid.plan_name, unpaid.allowance_credits, unpaid.monthly_allowance) == ("pro", 0, 0)
    assert unpaid.credit_reset_at.seconds == period_end(billing, sub_id)
    assert paid_cluster.scalar(grants, user) == granted

    await billing.deliver_all(billing.stripe.pay_renewal(sub_id))  # Stripe's retry succeeds
    paid = await credit.account(user)
    assert (paid.plan_name, paid.allowance_credits, paid.monthly_allowance) == ("pro", 100, 100)
    assert paid.credit_reset_at.seconds == period_end(billing, sub_id)
    history = await billing.history(user)
    assert [(p.amount, p.status) for p in history.payments] == [
        (1999, "succeeded"),
        (1999, "succeeded"),
    ]
    assert list((await credit.verify()).differences) == []


# --- at most one live subscription per user ---


async def test_concurrent_plan_checkouts_share_one_session(billing: BillingClient) -> None:
    user = await billing.signup()
    replies = await asyncio.gather(*(billing.change_plan(user, "pro") for _ in range(10)))
    assert {r.status for r in replies} == {"checkout"}
    assert len({r.session_id for r in replies}) == 1
    customer = customer_of(billing.stripe, user)

    def open_sessions() -> list[str]:
        return [
            s["id"]
            for s in billing.stripe.sessions.values()
            if s["customer"] == customer and s["status"] == "open"
        ]

    assert open_sessions() == [replies[0].session_id]
    # Another plan: the Pro session is expired at Stripe before the Enterprise one opens.
    enterprise = await billing.change_plan(user, "enterprise")
    assert billing.stripe.sessions[replies[0].session_id]["status"] == "expired"
    assert open_sessions() == [enterprise.session_id]


async def test_a_second_paid_subscription_is_cancelled_and_its_invoice_refunded(
    billing: BillingClient, credit: CreditClient
) -> None:
    """A Pro checkout left open (by an earlier release) and paid next to Enterprise."""
    user = await billing.signup()
    kept = await subscribe(billing, user, "enterprise")
    stale = open_session_at_stripe(billing.stripe, user, PRICE_PRO)
    events = billing.stripe.complete_checkout(stale)
    writes = len(billing.stripe.writes())
    await billing.deliver_all(events)
    undo = billing.stripe.writes()[writes:]
    assert sorted(w.method for w in undo) == ["DELETE", "POST"]  # cancel, refund
    assert all(w.idempotency_key for w in undo)

    duplicate = str(billing.stripe.sessions[stale]["subscription"])
    assert billing.stripe.subscriptions[duplicate]["status"] == "canceled"
    assert billing.stripe.subscriptions[kept]["status"] == "active"
    invoice = billing.stripe.invoices[billing.stripe.subscriptions[duplicate]["latest_invoice"]]
    refunds = [
        r["amount"]
        for r in billing.stripe.refunds.values()
        if r["payment_intent"] == invoice["_payment_intent"]
    ]
    assert refunds == [1999]
    account = await credit.account(user)
    assert (account.plan_name, account.is_unlimited) == ("enterprise", True)
    history = await billing.history(user)
    assert sorted((p.plan_name, p.amount, p.status) for p in history.payments) == [
        ("enterprise", 9999, "succeeded"),
        ("pro", 1999, "refunded"),
    ]
    await billing.deliver_all([*events, *billing.stripe.take_events()])  # redelivered: once only
    assert [
        r["amount"]
        for r in billing.stripe.refunds.values()
        if r["payment_intent"] == invoice["_payment_intent"]
    ] == [1999]
    assert (await credit.account(user)).plan_name == "enterprise"


# --- idempotent replays report what became of the request ---


async def test_replaying_a_plan_change_reports_what_became_of_its_checkout(
    billing: BillingClient, credit: CreditClient
) -> None:
    user = await billing.signup()
    expired_key, paid_key = secrets.token_hex(8), secrets.token_hex(8)
    first = await billing.change_plan(user, "pro", key=expired_key)
    await billing.deliver_all(billing.stripe.expire_checkout(first.session_id))  # a day later
    again = await billing.change_plan(user, "pro", key=expired_key)
    assert (again.status, again.checkout_url, again.session_id) == (
        "expired",
        "",
        first.session_id,
    )

    fresh = await billing.change_plan(user, "pro", key=paid_key)
    assert fresh.status == "checkout"
    assert fresh.session_id != first.session_id
    billing.stripe.take_events()
    await billing.deliver_all(billing.stripe.complete_checkout(fresh.session_id))
    replay = await billing.change_plan(user, "pro", key=paid_key)
    assert (replay.status, replay.checkout_url, replay.session_id) == (
        "paid",
        "",
        fresh.session_id,
    )
    assert (await billing.change_plan(user, "pro", key=expired_key)).status == "expired"
    assert (await credit.account(user)).plan_name == "pro"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await billing.change_plan(user, "enterprise", key=paid_key)  # the key names another change
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
