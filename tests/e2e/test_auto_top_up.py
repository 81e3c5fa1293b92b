"""Auto top-up, alerts and outbound webhooks through the real Envoy (issue 16): a card saved through
Checkout in setup mode, concurrent charges crossing the threshold, exactly one off-session payment
and its credits, and exactly one `topup.succeeded` delivery although the receiver was down for a
while; hostile input on the new routes."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from devstack.stripe_emulator import StripeEmulator
from devstack.webhook_receiver import WebhookReceiver
from tests.e2e.test_billing import credits, deliver, signup_user
from tests.e2e.test_gateway import assert_error

TYPE = "image_analysis"


def wait_until(check: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def enable(
    http: httpx.Client, stripe: StripeEmulator, headers: dict[str, str], threshold: int
) -> None:
    body = {"enabled": True, "threshold": threshold, "packId": "credits_10"}
    reply = http.put("/api/billing/auto-top-up", json=body, headers=headers)
    assert reply.status_code == 200, reply.text
    started = reply.json()["autoTopUp"]
    assert started["armed"] is False
    assert started["setupUrl"]
    deliver(http, stripe, stripe.complete_setup(started["setupUrl"].rsplit("/", 1)[1]))
    shown = http.get("/api/billing/auto-top-up", headers=headers).json()["autoTopUp"]
    assert shown["armed"] is True
    assert shown["hasPaymentMethod"] is True


def test_crossing_tops_up_once_and_the_event_survives_a_receiver_outage(
    http: httpx.Client, stripe: StripeEmulator, webhook_receiver: WebhookReceiver
) -> None:
    user, headers = signup_user(http)
    enable(http, stripe, headers, threshold=8)
    start = credits(http, headers)["currentCredits"]
    webhook_receiver.available = False
    try:
        tried_before = webhook_receiver.attempts

        def create(_: int) -> int:
            return http.post(
                "/api/tasks/create", json={"type": TYPE, "inputData": {}}, headers=headers
            ).status_code

        with ThreadPoolExecutor(4) as pool:
            assert list(pool.map(create, range(4))) == [201] * 4
        # The top-up lands (credits from the confirmed payment) while deliveries fail.
        topped = wait_until(lambda: credits(http, headers)["purchasedCredits"] >= 10)
        assert topped, credits(http, headers)
        assert wait_until(lambda: webhook_receiver.attempts > tried_before + 2)
        assert webhook_receiver.of_type("topup.succeeded", user) == []
    finally:
        webhook_receiver.available = True
    delivered = webhook_receiver.wait_for("topup.succeeded", user, timeout=30)
    assert len(delivered) == 1
    assert delivered[0]["data"]["credits"] == 10
    # One crossing, one PaymentIntent, one purchase of 10 credits.
    intents = [i for i in stripe.intents.values() if i["metadata"].get("studiox_user_id") == user]
    assert len(intents) == 1
    assert intents[0]["status"] == "succeeded"
    after = credits(http, headers)
    assert after["purchasedCredits"] == 10
    assert after["currentCredits"] < start + 10
    time.sleep(1.5)  # nothing more arrives: no second top-up, no redelivery of a delivered event
    assert len(webhook_receiver.of_type("topup.succeeded", user)) == 1
    history = http.get("/api/billing/history", headers=headers).json()
    assert [p["credits"] for p in history["payments"]] == [10]


def test_alerts_and_hostile_input_on_the_new_routes(
    http: httpx.Client, stripe: StripeEmulator, webhook_receiver: WebhookReceiver
) -> None:
    user, headers = signup_user(http)
    other, other_headers = signup_user(http)
    # The user's own threshold (the Free plan's would be 1), then the 10 credits spent.
    set_to = http.put("/api/users/alerts/threshold", json={"threshold": 5}, headers=headers)
    assert set_to.json() == {"threshold": 5, "planDefault": False}
    while credits(http, headers)["currentCredits"] > 0:
        reply = http.post(
            "/api/tasks/create", json={"type": TYPE, "inputData": {}}, headers=headers
        )
        if reply.status_code == 402:
            break
        assert reply.status_code == 201, reply.text
    alerts = http.get("/api/users/alerts", headers=headers).json()["alerts"]
    kinds = [a["kind"] for a in alerts]
    assert "credits.low" in kinds
    assert set(kinds) <= {"credits.low", "credits.depleted"}
    assert kinds.count("credits.low") == 1
    assert {a["threshold"] for a in alerts if a["kind"] == "credits.low"} == {5}
    # A page of alerts is bounded like every list: 1 to 100, absent or 0 for the default.
    one = http.get("/api/users/alerts", params={"limit": 1}, headers=headers).json()["alerts"]
    assert one == alerts[:1]
    for limit in (-1, 101):
        bad_page = http.get("/api/users/alerts", params={"limit": limit}, headers=headers)
        assert_error(bad_page, 400)
    assert http.get("/api/users/alerts", headers=other_headers).json() == {"alerts": []}
    assert webhook_receiver.wait_for("credits.low", user)
    default = {"usePlanDefault": True}
    back = http.put("/api/users/alerts/threshold", json=default, headers=other_headers)
    assert back.json() == {"threshold": 1, "planDefault": True}
    for bad in ({"threshold": -1}, {"threshold": 10**9}, {"threshold": "low"}):
        assert_error(http.put("/api/users/alerts/threshold", json=bad, headers=headers), 400)

    for body, status in [
        ({"enabled": True, "threshold": -1, "packId": "credits_10"}, 400),
        ({"enabled": True, "threshold": 0, "packId": "credits_10"}, 400),
        ({"enabled": True, "threshold": 10**7, "packId": "credits_10"}, 400),
        ({"enabled": True, "threshold": 99999999999, "packId": "credits_10"}, 400),
        ({"enabled": True, "threshold": "many", "packId": "credits_10"}, 400),
        ({"enabled": True, "threshold": 5, "packId": "credits_7"}, 400),
        ({"enabled": True, "threshold": 5, "packId": "x" * 5000}, 400),
    ]:
        assert_error(http.put("/api/billing/auto-top-up", json=body, headers=headers), status)
    assert_error(
        http.put("/api/billing/auto-top-up", json={"threshold": 5, "packId": "credits_10"}), 401
    )
    assert_error(http.get("/api/users/alerts", params={"limit": 1000}, headers=headers), 400)
    # Nothing was saved by the refused requests; one user's settings are not another's.
    assert http.get("/api/billing/auto-top-up", headers=headers).json()["autoTopUp"]["packId"] == ""
    enable(http, stripe, other_headers, threshold=3)
    mine = http.get("/api/billing/auto-top-up", headers=headers).json()["autoTopUp"]
    assert mine["armed"] is False
    assert mine["hasPaymentMethod"] is False
    assert other != user
