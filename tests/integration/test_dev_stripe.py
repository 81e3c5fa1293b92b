"""The local Stripe of `make run` (devstack/stripe_dev.py) with the real `stripe` library: checkout
pages, signed webhook delivery with retries, the test clock, and state kept across restarts."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe

from devstack import stripe_dev
from devstack.stripe_emulator import PRICE_PRO, WEBHOOK_SECRET
from tests.support.ports import free_port

Json = dict[str, Any]


class Receiver:
    """Stands in for the gateway's webhook endpoint: verifies each delivery as billing does and
    answers the first event it sees with the scripted statuses (then 200), every other with 200,
    or, with `always`, every delivery with that status."""

    def __init__(self, statuses: list[int] | None = None, always: int | None = None) -> None:
        self.statuses = list(statuses or [])
        self.always = always
        self.events: list[Json] = []
        self.attempts: list[tuple[float, str]] = []
        self.lock = threading.Lock()

    def __call__(self, url: str, payload: bytes, headers: dict[str, str]) -> int:
        event = stripe.Webhook.construct_event(
            payload, headers["stripe-signature"], WEBHOOK_SECRET, tolerance=300
        ).to_dict()
        with self.lock:
            self.attempts.append((time.monotonic(), event["id"]))
            scripted = self.statuses and event["id"] == self.attempts[0][1]
            status = self.always or (self.statuses.pop(0) if scripted else 200)
            if status == 200:
                self.events.append(event)
        return status

    def types(self) -> list[str]:
        with self.lock:
            return [e["type"] for e in self.events]

    def types_of(self, changes: list[Json]) -> list[str]:
        """The types of the events an advance of the clock reported, as received: found by id, so
        events of earlier steps still being delivered (or redelivered) do not stand in for them."""
        wanted = [i for change in changes for i in change["eventIds"]]
        with self.lock:
            by_id = {e["id"]: e["type"] for e in self.events}
        assert set(wanted) <= by_id.keys(), f"not received: {set(wanted) - by_id.keys()}"
        return [by_id[i] for i in wanted]

    def wait(self, condition: Callable[[], bool], within: float = 5.0) -> None:
        deadline = time.monotonic() + within
        while not condition():
            assert time.monotonic() < deadline, f"received only {self.types()}"
            time.sleep(0.02)


def start(receiver: Receiver, state: Path | None = None) -> stripe_dev.DevStripe:
    port = free_port()
    dev = stripe_dev.DevStripe(port, "http://127.0.0.1:1/api/billing/webhook", state, receiver)
    dev.start()
    return dev


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture
def dev(receiver: Receiver, tmp_path: Path) -> Iterator[stripe_dev.DevStripe]:
    running = start(receiver, tmp_path / "stripe-dev.json")
    yield running
    running.shutdown()


def client(dev: stripe_dev.DevStripe) -> stripe.StripeClient:
    env = stripe_dev.service_environment(int(dev.url.rsplit(":", 1)[1]))
    return stripe.StripeClient(
        env["STRIPE_SECRET_KEY"], base_addresses={"api": env["STRIPE_API_BASE"]}
    )


def credits_session(dev: stripe_dev.DevStripe, user: str = "user_1") -> Json:
    api = client(dev)
    customer = api.v1.customers.create({"metadata": {"studiox_user_id": user}})
    session: Json = api.v1.checkout.sessions.create(
        {
            "mode": "payment",
            "customer": customer.id,
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": "usd",
                        "unit_amount": 2000,
                        "product_data": {"name": "StudioX 50 credits"},
                    },
                }
            ],
            "metadata": {"studiox_user_id": user, "studiox_credits": "50"},
            "success_url": "http://localhost:5173/billing?session_id={CHECKOUT_SESSION_ID}",
            "cancel_url": "http://localhost:5173/billing",
        }
    ).to_dict()
    return session


def pro_session(dev: stripe_dev.DevStripe, user: str = "user_1") -> Json:
    api = client(dev)
    customer = api.v1.customers.create({"metadata": {"studiox_user_id": user}})
    session: Json = api.v1.checkout.sessions.create(
        {
            "mode": "subscription",
            "customer": customer.id,
            "line_items": [{"quantity": 1, "price": PRICE_PRO}],
            "subscription_data": {"metadata": {"studiox_plan_id": "pro"}},
            "success_url": "http://localhost:5173/billing",
        }
    ).to_dict()
    return session


def test_a_session_url_opens_the_local_page_showing_what_is_bought(
    dev: stripe_dev.DevStripe,
) -> None:
    session = credits_session(dev)
    assert session["url"].startswith(f"http://localhost:{dev.url.rsplit(':', 1)[1]}/checkout/cs_")
    page = httpx.get(session["url"])
    assert page.status_code == 200
    assert "StudioX 50 credits" in page.text
    assert "$20.00" in page.text
    assert "4242 4242 4242 4242" in page.text
    index = httpx.get(f"{dev.url}/")
    assert session["id"] in index.text


def test_paying_sends_signed_events_and_redirects_to_the_success_url(
    dev: stripe_dev.DevStripe, receiver: Receiver
) -> None:
    session = credits_session(dev)
    paid = httpx.post(session["url"], data={"action": "pay"})
    assert paid.status_code == 200
    assert 'data-status="paid"' in paid.text
    assert f"session_id={session['id']}" in paid.text
    receiver.wait(lambda: "checkout.session.completed" in receiver.types())
    completed = next(e for e in receiver.events if e["type"] == "checkout.session.completed")
    assert completed["data"]["object"]["payment_status"] == "paid"
    assert "payment_intent.succeeded" in receiver.types()
    # Paying again: the session is complete.
    again = httpx.post(
        session["url"], data={"action": "pay"}, headers={"accept": "application/json"}
    )
    assert again.status_code == 409


def test_a_declined_card_leaves_the_session_open_and_pays_nothing(
    dev: stripe_dev.DevStripe, receiver: Receiver
) -> None:
    session = credits_session(dev)
    status, body = stripe_dev.pay(dev.url, session["id"], "decline")
    assert (status, body["status"], body["delivered"]) == (200, "declined", True)
    assert receiver.types()[-1] == "payment_intent.payment_failed"
    assert "checkout.session.completed" not in receiver.types()
    assert client(dev).v1.checkout.sessions.retrieve(session["id"]).status == "open"
    page = httpx.post(session["url"], data={"action": "decline"})
    assert "Your card was declined" in page.text
    # Another card then pays.
    status, body = stripe_dev.pay(dev.url, session["id"], "pay")
    assert (status, body["status"], body["delivered"]) == (200, "paid", True)
    assert "checkout.session.completed" in receiver.types()


def test_authentication_asks_then_pays_or_declines(
    dev: stripe_dev.DevStripe, receiver: Receiver
) -> None:
    session = credits_session(dev)
    challenge = httpx.post(session["url"], data={"action": "authenticate"})
    assert 'id="challenge"' in challenge.text
    assert "checkout.session.completed" not in receiver.types()
    failed = httpx.post(session["url"], data={"action": "authenticate_fail"})
    assert "unable to authenticate" in failed.text
    ok = httpx.post(session["url"], data={"action": "authenticate_ok"})
    assert 'data-status="paid"' in ok.text


def test_deliveries_are_retried_until_answered_2xx(tmp_path: Path) -> None:
    receiver = Receiver(statuses=[500, 400, 503])
    dev = start(receiver, None)
    try:
        session = credits_session(dev)
        stripe_dev.pay(dev.url, session["id"], "pay", wait=0)
        # customer.created, the first event, is refused three times and delivered at the fourth.
        receiver.wait(lambda: "customer.created" in receiver.types(), within=10)
    finally:
        dev.shutdown()
    first_id = receiver.attempts[0][1]
    times = [t for t, event_id in receiver.attempts if event_id == first_id]
    # Failed three times, then delivered, with growing pauses (0.5 s, 1 s, 2 s).
    assert len(times) == 4
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps[0] >= 0.4
    assert gaps[2] > gaps[0]
    assert receiver.types().count(receiver.events[0]["type"]) == 1


def test_advance_clock_renews_and_ends_subscriptions(
    dev: stripe_dev.DevStripe, receiver: Receiver
) -> None:
    session = pro_session(dev, user="user_pro")
    stripe_dev.pay(dev.url, session["id"], "pay")
    api = client(dev)
    sub = api.v1.subscriptions.list({"customer": session["customer"]}).data[0]
    first_end = sub["items"]["data"][0]["current_period_end"]

    status, body = stripe_dev.advance_clock(dev.url, decline=False, user="user_pro")
    assert status == 200
    assert body["delivered"] is True
    assert [c["action"] for c in body["changes"]] == ["renewed"]
    renewed = api.v1.subscriptions.retrieve(sub.id)
    assert renewed["items"]["data"][0]["current_period_start"] == first_end
    assert receiver.types_of(body["changes"]) == ["customer.subscription.updated", "invoice.paid"]

    # Someone else's subscription is not touched.
    assert stripe_dev.advance_clock(dev.url, decline=False, user="user_other")[1]["changes"] == []

    _, body = stripe_dev.advance_clock(dev.url, decline=True, user="user_pro")
    assert body["changes"][0]["action"] == "renewal declined (past_due)"
    assert api.v1.subscriptions.retrieve(sub.id).status == "past_due"
    _, body = stripe_dev.advance_clock(dev.url, decline=False, user="user_pro")
    assert body["changes"][0]["action"] == "retried payment succeeded"

    api.v1.subscriptions.update(sub.id, {"cancel_at_period_end": True})
    _, body = stripe_dev.advance_clock(dev.url, decline=False, user="user_pro")
    assert body["changes"][0]["action"] == "canceled at period end"
    assert api.v1.subscriptions.retrieve(sub.id).status == "canceled"
    # The update above queued its own event; the end of the period is found by its id, not by
    # being the newest event received.
    assert body["delivered"] is True
    assert receiver.types_of(body["changes"]) == ["customer.subscription.deleted"]


def test_saves_from_several_threads_at_once_all_land(
    dev: stripe_dev.DevStripe, tmp_path: Path
) -> None:
    """The delivery thread and every request thread save the state: they must not trip over each
    other's temporary file (a request then failed with its connection closed)."""
    failures: list[BaseException] = []

    def save_often() -> None:
        try:
            for _ in range(100):
                dev.save()
        except BaseException as exc:  # any failure is reported by the assertion below
            failures.append(exc)

    threads = [threading.Thread(target=save_often) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert "undelivered" in json.loads((tmp_path / "stripe-dev.json").read_text())


def test_objects_and_undelivered_events_survive_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "stripe-dev.json"
    never = Receiver(always=503)
    first = start(never, state)
    try:
        session = credits_session(first)
        stripe_dev.pay(first.url, session["id"], "pay", wait=0)
    finally:
        first.shutdown()
    first.save()

    receiver = Receiver()
    second = start(receiver, state)
    try:
        # The customer billing recorded still exists, and what was not delivered is delivered now.
        assert client(second).v1.customers.retrieve(session["customer"]).id == session["customer"]
        receiver.wait(lambda: "checkout.session.completed" in receiver.types())
    finally:
        second.shutdown()
