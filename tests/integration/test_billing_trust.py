"""A signed event is a trigger, never the truth: credits are granted only for a purchase this system
started (its user, pack, amount and currency on record), confirmed against the object Stripe's API
returns, and subscriptions move only the account of the customer that owns them. An event that does
not match is acknowledged (so Stripe stops retrying), logged, counted as `refused`, and changes
nothing. Hostile values (NUL, out-of-range numbers, absurd times) never answer 500."""

from __future__ import annotations

import copy
import json
import secrets
import time
from collections.abc import Callable
from typing import Any

import grpc
import pytest

from devstack.stripe_emulator import PM_VISA, body_of, sign
from tests.support.billing import BillingClient, customer_of, events_counted
from tests.support.cluster import Cluster
from tests.support.credit import CreditClient

Event = dict[str, Any]


@pytest.fixture
def credit(paid_cluster: Cluster) -> CreditClient:
    return CreditClient(paid_cluster.channel("credit"))


def _ledger(cluster: Cluster, user: str) -> list[tuple[Any, ...]]:
    return cluster.sql(
        "SELECT kind, amount, idempotency_key FROM credit.entries WHERE user_id = %s ORDER BY id",
        user,
    )


def _payments(cluster: Cluster, user: str) -> list[tuple[Any, ...]]:
    return cluster.sql(
        "SELECT stripe_id, status, amount_cents, credits, plan_id FROM billing.payments "
        "WHERE user_id = %s ORDER BY id",
        user,
    )


async def _with_customer(billing: BillingClient) -> tuple[str, str]:
    """A new user who has a Stripe customer (an unpaid checkout created it)."""
    user = await billing.signup()
    await billing.purchase(user, pack_id="credits_10")
    return user, customer_of(billing.stripe, user)


async def test_a_signed_session_this_system_never_created_grants_nothing(
    billing: BillingClient, paid_cluster: Cluster
) -> None:
    user, customer = await _with_customer(billing)
    ledger, payments = _ledger(paid_cluster, user), _payments(paid_cluster, user)
    refused = events_counted("checkout.session.completed", "refused")
    forged = billing.stripe.event(
        "checkout.session.completed",
        {
            "id": f"cs_test_{secrets.token_hex(12)}",
            "object": "checkout.session",
            "mode": "payment",
            "status": "complete",
            "payment_status": "paid",
            "customer": customer,
            "client_reference_id": user,
            "amount_total": 0,
            "currency": "usd",
            "metadata": {
                "studiox_user_id": user,
                "studiox_pack_id": "credits_500",
                "studiox_credits": "1000000",
            },
        },
    )
    assert (await billing.deliver(forged)).received  # acknowledged: Stripe stops retrying
    assert _ledger(paid_cluster, user) == ledger
    assert _payments(paid_cluster, user) == payments
    assert events_counted("checkout.session.completed", "refused") == refused + 1


async def test_a_paid_session_replayed_for_another_user_grants_nothing_more(
    billing: BillingClient, credit: CreditClient, paid_cluster: Cluster
) -> None:
    owner = await billing.signup()
    started = await billing.purchase(owner, pack_id="credits_50")
    events = billing.stripe.complete_checkout(started.session_id)
    await billing.deliver_all(events)
    assert (await credit.account(owner)).purchased_credits == 50

    other, other_customer = await _with_customer(billing)
    ledger = _ledger(paid_cluster, other)
    completed = next(e for e in events if e["type"] == "checkout.session.completed")
    session = copy.deepcopy(completed["data"]["object"])
    session["metadata"]["studiox_user_id"] = other
    session["client_reference_id"] = other
    for claimed_customer in (session["customer"], other_customer):
        session["customer"] = claimed_customer
        await billing.deliver(billing.stripe.event("checkout.session.completed", session))
    assert _ledger(paid_cluster, other) == ledger
    assert (await credit.account(owner)).purchased_credits == 50
    grants = "SELECT count(*) FROM credit.entries WHERE idempotency_key = %s"
    assert paid_cluster.scalar(grants, f"stripe:checkout:{started.session_id}") == 1


async def test_a_tampered_event_grants_what_was_bought_and_paid_not_what_it_says(
    billing: BillingClient, credit: CreditClient
) -> None:
    user = await billing.signup()
    started = await billing.purchase(user, pack_id="credits_10")
    events = billing.stripe.complete_checkout(started.session_id)
    completed = next(e for e in events if e["type"] == "checkout.session.completed")
    session = copy.deepcopy(completed["data"]["object"])
    session["metadata"].update(studiox_credits="500", studiox_pack_id="credits_500")
    session["amount_total"] = 15000
    await billing.deliver(billing.stripe.event("checkout.session.completed", session))
    assert (await credit.account(user)).purchased_credits == 10
    history = await billing.history(user)
    assert [(p.amount, p.credits, p.status) for p in history.payments] == [(500, 10, "succeeded")]


async def test_payment_intents_this_system_did_not_start_grant_nothing(
    billing: BillingClient, paid_cluster: Cluster
) -> None:
    user, customer = await _with_customer(billing)
    ledger = _ledger(paid_cluster, user)
    metadata = {
        "studiox_purchase": "direct",
        "studiox_user_id": user,
        "studiox_pack_id": "credits_50",
        "studiox_credits": "50",
    }
    # One that exists at Stripe (50 cents, really paid) but was never started by StudioX...
    status, real, _ = billing.stripe.handle(
        "POST",
        "/v1/payment_intents",
        {
            "amount": "50",
            "currency": "usd",
            "customer": customer,
            "payment_method": PM_VISA,
            "confirm": "true",
            "metadata": metadata,
        },
        f"Bearer {billing.stripe.secret_key}",
        f"test-intent:{secrets.token_hex(8)}",
    )
    assert (status, real["status"]) == (200, "succeeded")
    # ...and one that never existed: 50 credits for 1 cent.
    forged = {
        **real,
        "id": f"pi_{secrets.token_hex(8)}",
        "amount": 1,
        "amount_received": 1,
    }
    refused = events_counted("payment_intent.succeeded", "refused")
    for intent in (real, forged):
        assert (
            await billing.deliver(billing.stripe.event("payment_intent.succeeded", intent))
        ).received
    assert _ledger(paid_cluster, user) == ledger
    assert events_counted("payment_intent.succeeded", "refused") == refused + 2


async def test_a_subscription_event_naming_another_customer_moves_no_one(
    billing: BillingClient, credit: CreditClient, paid_cluster: Cluster
) -> None:
    bystander, bystander_customer = await _with_customer(billing)
    owner = await billing.signup()
    started = await billing.change_plan(owner, "pro")
    events = billing.stripe.complete_checkout(started.session_id)  # not delivered yet
    sub_id = str(billing.stripe.sessions[started.session_id]["subscription"])
    forged = {**billing.stripe.subscriptions[sub_id], "customer": bystander_customer}
    refused = events_counted("customer.subscription.updated", "refused")
    await billing.deliver(billing.stripe.event("customer.subscription.updated", forged))
    assert events_counted("customer.subscription.updated", "refused") == refused + 1
    assert (await credit.account(bystander)).plan_name == "free"

    await billing.deliver_all(events)
    assert (await credit.account(owner)).plan_name == "pro"
    assert (await credit.account(bystander)).plan_name == "free"
    mirror = "SELECT user_id FROM billing.subscriptions WHERE id = %s"
    assert paid_cluster.sql(mirror, sub_id) == [(owner,)]


async def test_a_wrong_user_in_the_subscription_mirror_is_corrected(
    billing: BillingClient, credit: CreditClient, paid_cluster: Cluster
) -> None:
    """A row an earlier release wrote under the wrong user follows the subscription's customer."""
    owner = await billing.signup()
    started = await billing.change_plan(owner, "pro")
    await billing.deliver_all(billing.stripe.complete_checkout(started.session_id))
    sub_id = str(billing.stripe.sessions[started.session_id]["subscription"])
    paid_cluster.sql(
        "UPDATE billing.subscriptions SET user_id = 'user_wrong' WHERE id = %s", sub_id
    )

    await billing.deliver_all(billing.stripe.renew(sub_id))
    mirror = "SELECT user_id FROM billing.subscriptions WHERE id = %s"
    assert paid_cluster.sql(mirror, sub_id) == [(owner,)]
    account = await credit.account(owner)
    assert (account.plan_name, account.allowance_credits) == ("pro", 100)


@pytest.mark.parametrize("skew", [-301, 301, 600, 3600])
async def test_signatures_older_or_newer_than_five_minutes_are_refused(
    billing: BillingClient, credit: CreditClient, skew: int
) -> None:
    user = await billing.signup()
    started = await billing.purchase(user, pack_id="credits_10")
    events = billing.stripe.complete_checkout(started.session_id)
    body = body_of(next(e for e in events if e["type"] == "checkout.session.completed"))
    signature = sign(body, billing.stripe.webhook_secret, timestamp=int(time.time()) + skew)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await billing.post(body, signature)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (await credit.account(user)).purchased_credits == 0
    # A clock a little ahead (within the tolerance) is fine.
    await billing.post(body, sign(body, billing.stripe.webhook_secret, int(time.time()) + 240))
    assert (await credit.account(user)).purchased_credits == 10


# --- hostile values: 400 for a malformed envelope, acknowledged without effect otherwise ---

BIG = 2**31


def _session(event: Event) -> dict[str, Any]:
    obj: dict[str, Any] = event["data"]["object"]
    return obj


ENVELOPES: dict[str, Callable[[Event], None]] = {
    "NUL in the event id": lambda e: e.update(id="evt_\u0000" + secrets.token_hex(4)),
    "NUL in the event type": lambda e: e.update(type="checkout.session.completed\u0000"),
    "event id of 10 KB": lambda e: e.update(id="evt_" + "a" * 10_000),
    "created far in the future": lambda e: e.update(created=10**13),
    "created beyond any integer": lambda e: e.update(created=2**70),
    "created negative": lambda e: e.update(created=-1),
    "created as a float": lambda e: e.update(created=1e300),
    "object that is a list": lambda e: e["data"].update(object=[1, 2]),
}

OBJECTS: dict[str, Callable[[Event], None]] = {
    "NUL in the session id": lambda e: _session(e).update(id=_session(e)["id"] + "\u0000"),
    "NUL in the customer id": lambda e: _session(e).update(customer="cus_\u0000"),
    "NUL in the metadata": lambda e: _session(e)["metadata"].update(studiox_user_id="u\u0000"),
    "amount of 2^31": lambda e: _session(e).update(amount_total=BIG),
    "amount of 2^63": lambda e: _session(e).update(amount_total=2**63),
    "negative amount": lambda e: _session(e).update(amount_total=-500),
    "currency with NUL": lambda e: _session(e).update(currency="us\u0000d"),
}


async def _paid_session(billing: BillingClient) -> tuple[str, Event]:
    user = await billing.signup()
    started = await billing.purchase(user, pack_id="credits_10")
    events = billing.stripe.complete_checkout(started.session_id)
    return user, next(e for e in events if e["type"] == "checkout.session.completed")


async def _post_signed(billing: BillingClient, event: Event) -> grpc.StatusCode:
    body = json.dumps(event).encode()
    try:
        await billing.post(body, sign(body, billing.stripe.webhook_secret))
    except grpc.aio.AioRpcError as err:
        return err.code()
    return grpc.StatusCode.OK


@pytest.mark.parametrize("case", list(ENVELOPES))
async def test_a_malformed_signed_envelope_is_400(
    billing: BillingClient, credit: CreditClient, case: str
) -> None:
    user, completed = await _paid_session(billing)
    hostile = copy.deepcopy(completed)
    ENVELOPES[case](hostile)
    assert await _post_signed(billing, hostile) == grpc.StatusCode.INVALID_ARGUMENT
    assert (await credit.account(user)).purchased_credits == 0
    await billing.deliver(completed)  # the genuine delivery is unaffected
    assert (await credit.account(user)).purchased_credits == 10


@pytest.mark.parametrize("case", list(OBJECTS))
async def test_hostile_values_in_a_signed_object_are_acknowledged_and_change_nothing(
    billing: BillingClient, credit: CreditClient, paid_cluster: Cluster, case: str
) -> None:
    user, completed = await _paid_session(billing)
    payments = _payments(paid_cluster, user)
    hostile = copy.deepcopy(completed)
    hostile["id"] = f"evt_{secrets.token_hex(12)}"
    OBJECTS[case](hostile)
    assert await _post_signed(billing, hostile) == grpc.StatusCode.OK
    assert (await credit.account(user)).purchased_credits == 0
    assert _payments(paid_cluster, user) == payments
    await billing.deliver(completed)
    assert (await credit.account(user)).purchased_credits == 10


@pytest.mark.parametrize(
    "change",
    [
        {"amount_paid": BIG, "amount_due": BIG},
        {"amount_paid": -1999},
        {"customer": "cus_\u0000"},
        {"id": "in_\u0000"},
        {"parent": {"subscription_details": {"subscription": "sub_\u0000"}}},
    ],
    ids=["amount 2^31", "negative amount", "NUL customer", "NUL invoice id", "NUL subscription"],
)
async def test_hostile_invoices_are_acknowledged_and_change_nothing(
    billing: BillingClient, credit: CreditClient, paid_cluster: Cluster, change: dict[str, Any]
) -> None:
    user = await billing.signup()
    started = await billing.change_plan(user, "pro")
    events = billing.stripe.complete_checkout(started.session_id)
    paid = next(e for e in events if e["type"] == "invoice.paid")
    hostile = billing.stripe.event("invoice.paid", {**paid["data"]["object"], **change})
    assert await _post_signed(billing, hostile) == grpc.StatusCode.OK
    assert (await credit.account(user)).plan_name == "free"
    assert _payments(paid_cluster, user) == []
    await billing.deliver_all(events)
    assert (await credit.account(user)).plan_name == "pro"
    assert [(p.amount, p.status) for p in (await billing.history(user)).payments] == [
        (1999, "succeeded")
    ]
