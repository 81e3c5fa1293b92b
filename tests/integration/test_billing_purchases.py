"""Credit purchases through the real billing and credit services, Stripe played by the emulator:
money first (credits only once Stripe confirms), each payment granted once whatever reports it and
however often, only Stripe-signed webhooks trusted."""

from __future__ import annotations

import asyncio
import json
import secrets
import time

import grpc
import pytest
from prometheus_client import REGISTRY

from devstack.stripe_emulator import PM_3DS, PM_DECLINED, PM_VISA, body_of, sign
from studiox.billing.v1 import billing_pb2, billing_pb2_grpc
from tests.support.billing import BillingClient, status_of
from tests.support.cluster import Cluster
from tests.support.credit import CreditClient
from tests.support.tokens import DEFAULT_KEY, bearer, new_user_id


def _grants(cluster: Cluster, user: str, key: str) -> int:
    return cluster.scalar(
        "SELECT count(*) FROM credit.entries WHERE user_id = %s AND idempotency_key = %s",
        user,
        key,
    )


@pytest.fixture
def credit(paid_cluster: Cluster) -> CreditClient:
    return CreditClient(paid_cluster.channel("credit"))


async def test_catalog_has_plans_and_credit_packs(billing: BillingClient) -> None:
    reply = await billing.stub.ListPlans(billing_pb2.ListPlansRequest(), timeout=5)
    assert [p.id for p in reply.plans] == ["free", "pro", "enterprise"]
    packs = [(p.id, p.credits, p.price, p.currency) for p in reply.credit_packs]
    assert packs == [
        ("credits_10", 10, 500, "usd"),
        ("credits_50", 50, 2000, "usd"),
        ("credits_100", 100, 3500, "usd"),
        ("credits_500", 500, 15000, "usd"),
    ]


async def test_checkout_purchase_grants_only_when_stripe_confirms(
    billing: BillingClient, credit: CreditClient, paid_cluster: Cluster
) -> None:
    user = await billing.signup()
    started = await billing.purchase(user, pack_id="credits_50")
    assert started.success
    assert started.session_id.startswith("cs_")
    assert started.checkout_url.endswith(started.session_id)
    assert (started.status, started.credits) == ("open", 50)
    session = billing.stripe.sessions[started.session_id]
    assert (session["mode"], session["amount_total"]) == ("payment", 2000)
    assert (await credit.account(user)).current_credits == 10  # nothing before payment
    pending = await billing.history(user)
    assert [(p.status, p.amount, p.credits, p.kind) for p in pending.payments] == [
        ("pending", 2000, 50, "credits")
    ]

    billing.stripe.take_events()
    await billing.deliver_all(billing.stripe.complete_checkout(started.session_id))

    account = await credit.account(user)
    assert (account.current_credits, account.purchased_credits) == (60, 50)
    assert _grants(paid_cluster, user, f"stripe:checkout:{started.session_id}") == 1
    done = await billing.history(user)
    assert [(p.status, p.amount, p.credits) for p in done.payments] == [("succeeded", 2000, 50)]
    assert list((await credit.verify()).differences) == []


async def test_one_event_delivered_100_times_concurrently_grants_once(
    billing: BillingClient, credit: CreditClient, paid_cluster: Cluster
) -> None:
    user = await billing.signup()
    started = await billing.purchase(user, credits=100)
    events = billing.stripe.complete_checkout(started.session_id)
    completed = next(e for e in events if e["type"] == "checkout.session.completed")
    counted = {
        o: _events_counted("checkout.session.completed", o) for o in ("processed", "duplicate")
    }
    # Every event Stripe sent, the completion 100 times at once, then 20 more one by one.
    replies = await asyncio.gather(
        *(billing.deliver(completed) for _ in range(100)),
        *(billing.deliver(e) for e in events),
    )
    assert all(r.received for r in replies)
    for _ in range(20):
        await billing.deliver(completed)
    account = await credit.account(user)
    assert (account.current_credits, account.purchased_credits) == (110, 100)
    assert _grants(paid_cluster, user, f"stripe:checkout:{started.session_id}") == 1
    purchased = "SELECT count(*) FROM credit.entries WHERE user_id = %s AND purchased_delta > 0"
    assert paid_cluster.scalar(purchased, user) == 1
    seen = "SELECT count(*) FROM billing.webhook_events WHERE id = %s"
    assert paid_cluster.scalar(seen, completed["id"]) == 1
    assert _events_counted("checkout.session.completed", "processed") == counted["processed"] + 1
    # 100 at once, once more among all the events, then 20: 121 deliveries, 1 processed.
    assert _events_counted("checkout.session.completed", "duplicate") == counted["duplicate"] + 120


def _events_counted(event_type: str, outcome: str) -> float:
    labels = {"type": event_type, "outcome": outcome}
    return REGISTRY.get_sample_value("studiox_webhook_events_total", labels) or 0.0


async def test_a_checkout_paid_twice_over_is_granted_under_one_key(
    billing: BillingClient, credit: CreditClient, paid_cluster: Cluster
) -> None:
    """The same payment reported by the session event, its async-payment event and the intent event
    (each a different event id) still grants once: the session's key names the purchase."""
    user = await billing.signup()
    started = await billing.purchase(user, pack_id="credits_10")
    events = billing.stripe.complete_checkout(started.session_id)
    completed = next(e for e in events if e["type"] == "checkout.session.completed")
    again = billing.stripe.event(
        "checkout.session.async_payment_succeeded", completed["data"]["object"]
    )
    await billing.deliver_all([*events, again, *events])
    assert (await credit.account(user)).purchased_credits == 10
    assert _grants(paid_cluster, user, f"stripe:checkout:{started.session_id}") == 1


async def test_saved_payment_method_is_charged_and_granted_once(
    billing: BillingClient, credit: CreditClient, paid_cluster: Cluster
) -> None:
    user = await billing.signup()
    billing.stripe.take_events()
    paid = await billing.purchase(user, pack_id="credits_100", payment_method_id=PM_VISA)
    assert (paid.status, paid.credits) == ("succeeded", 100)
    assert paid.payment_intent_id.startswith("pi_")
    assert paid.session_id == ""
    assert (await credit.account(user)).purchased_credits == 100  # Stripe confirmed: granted now
    # The webhook for the same intent arrives afterwards (and again): nothing more.
    await billing.deliver_pending()
    await billing.deliver_all(
        [
            billing.stripe.event(
                "payment_intent.succeeded", billing.stripe.intents[paid.payment_intent_id]
            )
        ]
    )
    assert (await credit.account(user)).purchased_credits == 100
    assert _grants(paid_cluster, user, f"stripe:pi:{paid.payment_intent_id}") == 1
    history = await billing.history(user)
    assert [(p.status, p.amount, p.credits) for p in history.payments] == [("succeeded", 3500, 100)]


async def test_a_payment_needing_authentication_is_granted_by_the_webhook(
    billing: BillingClient, credit: CreditClient
) -> None:
    user = await billing.signup()
    started = await billing.purchase(user, pack_id="credits_10", payment_method_id=PM_3DS)
    assert started.status == "requires_action"
    assert started.client_secret.startswith(started.payment_intent_id)
    assert (await credit.account(user)).purchased_credits == 0
    billing.stripe.take_events()
    await billing.deliver_all(billing.stripe.authenticate_intent(started.payment_intent_id))
    assert (await credit.account(user)).purchased_credits == 10


async def test_a_declined_card_is_400_recorded_and_grants_nothing(
    billing: BillingClient, credit: CreditClient
) -> None:
    user = await billing.signup()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await billing.purchase(user, pack_id="credits_10", payment_method_id=PM_DECLINED)
    assert status_of(err.value) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_INPUT")
    assert "declined" in (err.value.details() or "")
    await billing.deliver_pending()  # payment_intent.payment_failed
    assert (await credit.account(user)).current_credits == 10
    history = await billing.history(user)
    assert [(p.status, p.credits) for p in history.payments] == [("failed", 10)]


async def test_someone_elses_payment_method_is_refused(billing: BillingClient) -> None:
    owner = await billing.signup()
    await billing.purchase(owner, pack_id="credits_10")  # creates the owner's Stripe customer
    customer = next(
        c["id"]
        for c in billing.stripe.customers.values()
        if c["metadata"]["studiox_user_id"] == owner
    )
    stolen = billing.stripe.save_payment_method(customer)
    thief = await billing.signup()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await billing.purchase(thief, pack_id="credits_10", payment_method_id=stolen)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "paymentMethodId" in (err.value.details() or "")
    ok = await billing.purchase(owner, pack_id="credits_10", payment_method_id=stolen)
    assert ok.status == "succeeded"


@pytest.mark.parametrize(
    ("pack_id", "credits"),
    [("", 0), ("credits_7", 0), ("", 7), ("", -50), ("credits_50", 100), ("x" * 300, 0)],
)
async def test_invalid_pack_or_amount_lists_the_valid_packs(
    billing: BillingClient, pack_id: str, credits: int
) -> None:
    user = await billing.signup()
    writes = len(billing.stripe.writes())
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await billing.purchase(user, pack_id=pack_id, credits=credits)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    message = err.value.details() or ""
    for valid in ("credits_10", "credits_50", "credits_100", "credits_500", "$20.00"):
        assert valid in message
    assert len(billing.stripe.writes()) == writes  # Stripe never called


async def test_a_user_without_an_account_cannot_start_a_purchase(billing: BillingClient) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await billing.purchase(new_user_id(), pack_id="credits_10")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_one_stripe_customer_per_user_even_under_concurrency(
    billing: BillingClient, paid_cluster: Cluster
) -> None:
    user = await billing.signup()
    started = await asyncio.gather(
        *(billing.purchase(user, pack_id="credits_10") for _ in range(10))
    )
    assert len({s.session_id for s in started}) == 10
    customers = {billing.stripe.sessions[s.session_id]["customer"] for s in started}
    assert len(customers) == 1
    ours = [
        c for c in billing.stripe.customers.values() if c["metadata"]["studiox_user_id"] == user
    ]
    assert len(ours) == 1
    rows = "SELECT count(*) FROM billing.customers WHERE user_id = %s"
    assert paid_cluster.scalar(rows, user) == 1
    await billing.purchase(user, pack_id="credits_50")
    assert (
        len(
            [
                c
                for c in billing.stripe.customers.values()
                if c["metadata"]["studiox_user_id"] == user
            ]
        )
        == 1
    )


async def test_a_repeated_idempotency_key_returns_the_same_checkout(
    billing: BillingClient, paid_cluster: Cluster
) -> None:
    user = await billing.signup()
    key = secrets.token_hex(8)
    first = await billing.purchase(user, pack_id="credits_50", key=key)
    again = await billing.purchase(user, pack_id="credits_50", key=key)
    assert again.session_id == first.session_id
    assert (
        paid_cluster.scalar("SELECT count(*) FROM billing.payments WHERE user_id = %s", user) == 1
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await billing.purchase(user, pack_id="credits_100", key=key)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    stranger = await billing.signup()
    other = await billing.purchase(stranger, pack_id="credits_50", key=key)
    assert other.session_id != first.session_id  # keys are per user


async def test_replaying_a_purchase_reports_what_became_of_it(
    billing: BillingClient, credit: CreditClient
) -> None:
    user = await billing.signup()
    expired_key, paid_key = secrets.token_hex(8), secrets.token_hex(8)
    first = await billing.purchase(user, pack_id="credits_50", key=expired_key)
    await billing.deliver_all(billing.stripe.expire_checkout(first.session_id))  # a day later
    again = await billing.purchase(user, pack_id="credits_50", key=expired_key)
    assert (again.status, again.checkout_url, again.session_id) == (
        "expired",
        "",
        first.session_id,
    )
    history = await billing.history(user)
    assert [(p.status, p.credits) for p in history.payments] == [("expired", 50)]

    bought = await billing.purchase(user, pack_id="credits_10", key=paid_key)
    billing.stripe.take_events()
    await billing.deliver_all(billing.stripe.complete_checkout(bought.session_id))
    for _ in range(2):
        replay = await billing.purchase(user, pack_id="credits_10", key=paid_key)
        assert (replay.status, replay.checkout_url, replay.session_id) == (
            "paid",
            "",
            bought.session_id,
        )
    assert (await credit.account(user)).purchased_credits == 10
    history = await billing.history(user)
    assert [(p.status, p.credits) for p in history.payments] == [
        ("succeeded", 10),
        ("expired", 50),
    ]


async def test_every_stripe_write_carries_an_idempotency_key(billing: BillingClient) -> None:
    user = await billing.signup()
    before = len(billing.stripe.writes())
    await billing.purchase(user, pack_id="credits_10")
    await billing.purchase(user, pack_id="credits_10", payment_method_id=PM_VISA)
    await billing.change_plan(user, "pro")
    await billing.change_plan(user, "enterprise")  # expires the Pro checkout
    writes = billing.stripe.writes()[before:]
    assert writes
    assert all(w.idempotency_key for w in writes), [w.path for w in writes if not w.idempotency_key]


async def test_history_pages_newest_first(billing: BillingClient) -> None:
    user = await billing.signup()
    for pack in ("credits_10", "credits_50", "credits_100"):
        await billing.purchase(user, pack_id=pack, payment_method_id=PM_VISA)
    first = await billing.history(user, limit=2)
    assert (first.count, [p.credits for p in first.payments]) == (2, [100, 50])
    assert first.next_cursor
    second = await billing.history(user, limit=2, cursor=first.next_cursor)
    assert ([p.credits for p in second.payments], second.next_cursor) == ([10], "")
    assert all(p.created_at.seconds > 0 and p.currency == "usd" for p in first.payments)
    assert (await billing.history(await billing.signup())).count == 0
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await billing.history(user, cursor="bogus!")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await billing.history(user, limit=1000)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_user_endpoints_need_a_token(billing: BillingClient) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await billing.stub.PurchaseCredits(
            billing_pb2.PurchaseCreditsRequest(pack_id="credits_10"), timeout=5
        )
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


# --- webhook signatures ---


def _attacks(body: bytes, secret: str) -> dict[str, tuple[bytes, str | None]]:
    now = int(time.time())
    altered = body.replace(b'"credits_10"', b'"credits_500"').replace(b'"10"', b'"500"')
    assert altered != body
    return {
        "missing header": (body, None),
        "empty header": (body, ""),
        "forged signature": (body, f"t={now},v1={secrets.token_hex(32)}"),
        "wrong secret": (body, sign(body, "whsec_attacker")),
        "stale timestamp": (body, sign(body, secret, timestamp=now - 301)),
        "body altered after signing": (altered, sign(body, secret)),
        "signature of another body": (body, sign(body + b" ", secret)),
        "no v1 scheme": (body, sign(body, secret).replace("v1=", "v0=")),
        "garbage header": (body, "garbage"),
        "timestamp moved": (body, sign(body, secret, now).replace(f"t={now}", f"t={now + 1}")),
    }


async def test_unsigned_or_badly_signed_webhooks_are_refused_and_change_nothing(
    billing: BillingClient, credit: CreditClient, paid_cluster: Cluster
) -> None:
    user = await billing.signup()
    started = await billing.purchase(user, pack_id="credits_10")
    events = billing.stripe.complete_checkout(started.session_id)
    completed = next(e for e in events if e["type"] == "checkout.session.completed")
    body = body_of(completed)
    rejected = _events_counted("unknown", "rejected")
    attacks = _attacks(body, billing.stripe.webhook_secret)
    for name, (payload, signature) in attacks.items():
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await billing.post(payload, signature)
        assert status_of(err.value) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_INPUT"), name
    assert _events_counted("unknown", "rejected") == rejected + len(attacks)
    assert (await credit.account(user)).current_credits == 10
    seen = "SELECT count(*) FROM billing.webhook_events WHERE id = %s"
    assert paid_cluster.scalar(seen, completed["id"]) == 0
    # The genuine delivery still works afterwards: the attempts consumed nothing.
    await billing.deliver(completed)
    assert (await credit.account(user)).current_credits == 20


@pytest.mark.parametrize(
    "payload",
    [b"", b"not json", b"[]", b'{"id": "evt_1"}', json.dumps({"id": 1, "type": "x"}).encode()],
)
async def test_signed_garbage_is_refused(billing: BillingClient, payload: bytes) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await billing.post(payload, sign(payload, billing.stripe.webhook_secret))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_unknown_event_types_are_acknowledged_and_recorded(
    billing: BillingClient, paid_cluster: Cluster
) -> None:
    event = billing.stripe.event(
        "charge.dispute.funds_reinstated", {"id": "du_1", "object": "dispute"}
    )
    assert (await billing.deliver(event)).received
    assert (await billing.deliver(event)).received
    seen = "SELECT count(*) FROM billing.webhook_events WHERE id = %s AND type = %s"
    assert paid_cluster.scalar(seen, event["id"], event["type"]) == 1


async def test_paid_operations_without_stripe_are_not_configured(cluster: Cluster) -> None:
    """The session cluster has no STRIPE_SECRET_KEY: paid calls are refused clearly (the gateway
    answers 503 for NOT_CONFIGURED), the catalog and history still work."""
    stub = billing_pb2_grpc.BillingServiceStub(cluster.channel("billing"))
    user = new_user_id()
    token = bearer(DEFAULT_KEY.mint(user))
    calls = [
        stub.PurchaseCredits(
            billing_pb2.PurchaseCreditsRequest(pack_id="credits_10"), metadata=token
        ),
        stub.UpgradePlan(billing_pb2.UpgradePlanRequest(plan_name="pro"), metadata=token),
        stub.HandleWebhook(billing_pb2.HandleWebhookRequest()),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert status_of(err.value) == (grpc.StatusCode.FAILED_PRECONDITION, "NOT_CONFIGURED")
        assert err.value.details() == "Payments are not configured"
    assert (await stub.ListPlans(billing_pb2.ListPlansRequest())).credit_packs
    history = await stub.ListPayments(billing_pb2.ListPaymentsRequest(), metadata=token)
    assert (history.success, history.count) == (True, 0)
