"""Payments through the real Envoy: the catalog, a credit purchase paid on Stripe (the local
emulator) and confirmed by a Stripe-signed webhook, duplicate, forged and hostile deliveries, plan
upgrade and downgrade, concurrent upgrades, the payment history, and a 503 when payments are not
configured."""

from __future__ import annotations

import json
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from devstack.stripe_emulator import PRICE_PRO, StripeEmulator, body_of, sign
from tests.e2e.test_gateway import assert_error
from tests.support.billing import customer_of, open_session_at_stripe
from tests.support.stack import Stack
from tests.support.tokens import DEFAULT_KEY, new_user_id


def auth(user: str) -> dict[str, str]:
    return {"authorization": f"Bearer {DEFAULT_KEY.mint(user)}"}


def signup(http: httpx.Client) -> dict[str, str]:
    """A new user, initialized (Free, 10 credits); returns its auth headers."""
    return signup_user(http)[1]


def signup_user(http: httpx.Client) -> tuple[str, dict[str, str]]:
    user = new_user_id()
    headers = auth(user)
    reply = http.post(
        "/api/users/initialize", json={"email": f"{user}@example.com"}, headers=headers
    )
    assert reply.status_code == 201, reply.text
    return user, headers


def credits(http: httpx.Client, headers: dict[str, str]) -> dict[str, Any]:
    reply = http.get("/api/users/credits", headers=headers)
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()["credits"]
    return body


def webhook(http: httpx.Client, body: bytes, signature: str | None) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if signature is not None:
        headers["stripe-signature"] = signature
    return http.post("/api/billing/webhook", content=body, headers=headers)


def deliver(http: httpx.Client, stripe: StripeEmulator, events: list[dict[str, Any]]) -> None:
    for event in events:
        body = body_of(event)
        reply = webhook(http, body, sign(body, stripe.webhook_secret))
        assert reply.status_code == 200, reply.text
        assert reply.json() == {"received": True}


def test_plans_include_credit_packs(http: httpx.Client) -> None:
    body = http.get("/api/billing/plans").json()
    assert [p["id"] for p in body["plans"]] == ["free", "pro", "enterprise"]
    assert body["creditPacks"][1] == {
        "id": "credits_50",
        "name": "50 credits",
        "credits": 50,
        "price": 2000,
        "currency": "usd",
    }
    assert [p["credits"] for p in body["creditPacks"]] == [10, 50, 100, 500]


def test_purchase_is_granted_once_by_the_signed_webhook(
    http: httpx.Client, stripe: StripeEmulator
) -> None:
    headers = signup(http)
    started = http.post(
        "/api/billing/purchase-credits", json={"packId": "credits_50"}, headers=headers
    )
    assert started.status_code == 200, started.text
    body = started.json()
    assert body["success"] is True
    assert body["sessionId"].startswith("cs_")
    assert body["checkoutUrl"].endswith(body["sessionId"])
    assert credits(http, headers)["currentCredits"] == 10

    events = stripe.complete_checkout(body["sessionId"])
    deliver(http, stripe, events)
    after = credits(http, headers)
    assert (after["currentCredits"], after["purchasedCredits"]) == (60, 50)

    # The completion delivered 100 more times, concurrently: still one grant.
    completed = next(e for e in events if e["type"] == "checkout.session.completed")
    payload = body_of(completed)
    with ThreadPoolExecutor(max_workers=25) as pool:
        replies = list(
            pool.map(
                lambda _: webhook(http, payload, sign(payload, stripe.webhook_secret)), range(100)
            )
        )
    assert {r.status_code for r in replies} == {200}
    assert credits(http, headers)["currentCredits"] == 60
    history = http.get("/api/billing/history", headers=headers).json()
    assert history["count"] == 1
    assert history["payments"][0]["status"] == "succeeded"
    assert history["payments"][0]["credits"] == 50
    assert history["payments"][0]["amount"] == 2000
    assert history["payments"][0]["createdAt"].endswith("Z")


def test_forged_stale_or_altered_webhooks_are_400_and_change_nothing(
    http: httpx.Client, stripe: StripeEmulator
) -> None:
    headers = signup(http)
    started = http.post("/api/billing/purchase-credits", json={"credits": 10}, headers=headers)
    session_id = started.json()["sessionId"]
    events = stripe.complete_checkout(session_id)
    completed = next(e for e in events if e["type"] == "checkout.session.completed")
    body = body_of(completed)
    tampered = json.loads(body)
    tampered["data"]["object"]["metadata"]["studiox_credits"] = "100000"
    altered = body_of(tampered)
    now = int(time.time())
    attacks = {
        "no signature": (body, None),
        "forged": (body, f"t={now},v1={secrets.token_hex(32)}"),
        "wrong secret": (body, sign(body, "whsec_not_the_secret")),
        "stale": (body, sign(body, stripe.webhook_secret, timestamp=now - 301)),
        "altered after signing": (altered, sign(body, stripe.webhook_secret)),
    }
    for name, (payload, signature) in attacks.items():
        reply = webhook(http, payload, signature)
        assert reply.status_code == 400, name
        assert_error(reply, 400)
    assert credits(http, headers)["currentCredits"] == 10
    deliver(http, stripe, [completed])
    assert credits(http, headers)["currentCredits"] == 20


def test_upgrade_to_pro_then_downgrade_to_free_at_period_end(
    http: httpx.Client, stripe: StripeEmulator
) -> None:
    headers = signup(http)
    started = http.post("/api/billing/upgrade-plan", json={"planName": "pro"}, headers=headers)
    assert started.status_code == 200, started.text
    body = started.json()
    assert (body["status"], body["planName"]) == ("checkout", "pro")
    assert credits(http, headers)["planName"] == "free"

    stripe.take_events()
    deliver(http, stripe, stripe.complete_checkout(body["sessionId"]))
    pro = credits(http, headers)
    assert (pro["planName"], pro["monthlyAllowance"], pro["allowanceCredits"]) == ("pro", 100, 100)

    # The /api/users alias reaches the same RPC.
    down = http.post("/api/users/upgrade-plan", json={"planName": "free"}, headers=headers)
    assert down.status_code == 200, down.text
    assert down.json()["status"] == "cancel_at_period_end"
    assert down.json()["effectiveAt"] == pro["creditResetAt"]
    deliver(http, stripe, stripe.take_events())
    assert credits(http, headers)["planName"] == "pro"  # until the period ends

    sub_id = stripe.sessions[body["sessionId"]]["subscription"]
    deliver(http, stripe, stripe.end_period(sub_id))
    free = credits(http, headers)
    assert (free["planName"], free["monthlyAllowance"], free["currentCredits"]) == ("free", 10, 10)
    history = http.get("/api/billing/history", params={"limit": 10}, headers=headers).json()
    assert [(p["kind"], p["planName"]) for p in history["payments"]] == [("subscription", "pro")]


def test_concurrent_upgrades_end_with_one_subscription_and_one_payment(
    http: httpx.Client, stripe: StripeEmulator
) -> None:
    user, headers = signup_user(http)
    with ThreadPoolExecutor(max_workers=10) as pool:
        replies = list(
            pool.map(
                lambda _: http.post(
                    "/api/billing/upgrade-plan", json={"planName": "pro"}, headers=headers
                ),
                range(10),
            )
        )
    assert {r.status_code for r in replies} == {200}, [r.text for r in replies]
    sessions = {r.json()["sessionId"] for r in replies}
    assert len(sessions) == 1
    (session_id,) = sessions
    customer = customer_of(stripe, user)
    # Pay it, and a second one that slipped past (see open_session_at_stripe).
    slipped = open_session_at_stripe(stripe, user, PRICE_PRO)
    deliver(http, stripe, stripe.complete_checkout(session_id))
    deliver(http, stripe, stripe.complete_checkout(slipped))

    live = [
        s
        for s in stripe.subscriptions.values()
        if s["customer"] == customer and s["status"] != "canceled"
    ]
    assert [s["id"] for s in live] == [stripe.sessions[session_id]["subscription"]]
    charged = sum(
        i["amount_received"]
        for i in stripe.intents.values()
        if i["customer"] == customer and i["status"] == "succeeded"
    )
    refunded = sum(
        r["amount"]
        for r in stripe.refunds.values()
        if stripe.intents[r["payment_intent"]]["customer"] == customer
    )
    assert (charged, refunded) == (2 * 1999, 1999)  # one net payment
    pro = credits(http, headers)
    assert (pro["planName"], pro["allowanceCredits"]) == ("pro", 100)
    history = http.get("/api/billing/history", headers=headers).json()
    assert sorted((p["status"], p["amount"]) for p in history["payments"]) == [
        ("refunded", 1999),
        ("succeeded", 1999),
    ]


def test_hostile_signed_webhooks_are_never_5xx(http: httpx.Client, stripe: StripeEmulator) -> None:
    headers = signup(http)
    started = http.post("/api/billing/purchase-credits", json={"credits": 10}, headers=headers)
    events = stripe.complete_checkout(started.json()["sessionId"])
    completed = next(e for e in events if e["type"] == "checkout.session.completed")
    now = int(time.time())

    def variant(**changes: Any) -> bytes:
        event = json.loads(body_of(completed))
        event["id"] = f"evt_{secrets.token_hex(12)}"
        event.update(changes.pop("event", {}))
        event["data"]["object"].update(changes)
        return body_of(event)

    malformed = {
        "NUL in the event id": variant(event={"id": "evt_\u0000"}),
        "absurd created": variant(event={"created": 10**13}),
    }
    for body in malformed.values():
        assert_error(webhook(http, body, sign(body, stripe.webhook_secret)), 400)
    future = body_of(completed)
    assert_error(webhook(http, future, sign(future, stripe.webhook_secret, now + 600)), 400)
    acknowledged = {
        "NUL in the session id": variant(id="cs_\u0000"),
        "amount of 2^31": variant(amount_total=2**31),
        "negative amount": variant(amount_total=-1),
    }
    for name, body in acknowledged.items():
        reply = webhook(http, body, sign(body, stripe.webhook_secret))
        assert (reply.status_code, reply.json()) == (200, {"received": True}), name
    assert credits(http, headers)["currentCredits"] == 10
    deliver(http, stripe, [completed])
    assert credits(http, headers)["currentCredits"] == 20


def test_billing_input_errors_are_json(http: httpx.Client) -> None:
    headers = signup(http)
    bad = http.post("/api/billing/purchase-credits", json={"credits": 7}, headers=headers)
    body = assert_error(bad, 400)
    assert "credits_500" in str(body["error"])
    assert_error(
        http.post("/api/billing/upgrade-plan", json={"planName": "gold"}, headers=headers), 400
    )
    assert_error(http.post("/api/billing/purchase-credits", json={"credits": 10}), 401)
    assert_error(http.get("/api/billing/history", params={"cursor": "nope"}, headers=headers), 400)


def test_without_a_stripe_key_payments_are_503_and_the_rest_works(
    stack: Stack, http: httpx.Client
) -> None:
    headers = signup(http)
    saved = dict(stack.env)
    stack.stop_process("billing")
    stack.env.pop("STRIPE_SECRET_KEY")
    try:
        stack.start_process("billing")
        stack.wait_healthy(30)
        reply = http.post(
            "/api/billing/purchase-credits", json={"packId": "credits_10"}, headers=headers
        )
        body = assert_error(reply, 503)
        assert body["error"] == "Payments are not configured"
        assert_error(
            http.post("/api/billing/upgrade-plan", json={"planName": "pro"}, headers=headers), 503
        )
        assert http.get("/api/billing/plans").status_code == 200
        assert http.get("/api/billing/history", headers=headers).status_code == 200
        assert http.get("/api/users/credits", headers=headers).status_code == 200
    finally:
        stack.stop_process("billing")
        stack.env.clear()
        stack.env.update(saved)
        stack.start_process("billing")
        stack.wait_healthy(30)
