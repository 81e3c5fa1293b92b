"""The local Stripe of `make run` (APP_ENV=development without STRIPE_SECRET_KEY).

One process on 127.0.0.1:STUDIOX_DEV_STRIPE_PORT serves
- `/v1/…`: Stripe's API, answered by the Stripe emulator the tests use (devstack.stripe_emulator);
  the services reach it through STRIPE_API_BASE with the real `stripe` library;
- `/checkout/<session>`: the hosted checkout page (devstack.checkout_page) the sessions' `url`s
  point to, and `/`: the list of sessions;
- `/_dev/advance-clock`: the end of the billing period for every live subscription (renewal, or
  cancellation for those set to cancel at period end), what a Stripe test clock does.

Every event Stripe would send is signed as Stripe signs it and POSTed to the gateway's
`/api/billing/webhook`, retried with backoff until it is answered 2xx, like `stripe listen
--forward-to`. The emulator's objects and undelivered events are kept in the state folder, so the
customers recorded by billing still exist after a restart."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from devstack import checkout_page
from devstack.http_server import QuietHandler, local_server
from devstack.stripe_emulator import (
    PRICE_ENTERPRISE,
    PRICE_PRO,
    SECRET_KEY,
    WEBHOOK_SECRET,
    StripeEmulator,
    answer_api,
    body_of,
    sign,
)

log = logging.getLogger("studiox.devstripe")

WEBHOOK_PATH = "/api/billing/webhook"
MAX_RETRY_SECONDS = 30.0
TICK_SECONDS = 0.05
# The emulator's stores that make up its state (all plain JSON).
STORES = (
    "customers",
    "sessions",
    "intents",
    "subscriptions",
    "invoices",
    "payment_methods",
    "refunds",
    "setup_intents",
    "card_behaviour",
)
META_USER = "studiox_user_id"

Json = dict[str, Any]


def api_base(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def service_environment(port: int) -> dict[str, str]:
    """What the services need to pay through the local Stripe."""
    return {
        "STRIPE_SECRET_KEY": SECRET_KEY,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_API_BASE": api_base(port),
        "STRIPE_PRICE_PRO": PRICE_PRO,
        "STRIPE_PRICE_ENTERPRISE": PRICE_ENTERPRISE,
    }


# --- webhook delivery ----------------------------------------------------------------------


@dataclass
class Delivery:
    event: Json
    attempts: int = 0
    due: float = 0.0


@dataclass
class WebhookForwarder:
    """Sends each event to `url` signed with `secret`, in order, retrying any non-2xx answer or
    network failure with exponential backoff (0.5 s doubling up to 30 s) and no limit."""

    url: str
    secret: str
    post: Callable[[str, bytes, dict[str, str]], int]
    pending: list[Delivery] = field(default_factory=list)
    delivered: dict[str, int] = field(default_factory=dict)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def add(self, events: Iterable[Json]) -> None:
        with self.changed:
            self.pending.extend(Delivery(e) for e in events)

    def deliver_due(self, now: float) -> bool:
        """One pass over the due deliveries; True when any was attempted."""
        with self.changed:
            due = [d for d in self.pending if d.due <= now]
        for delivery in due:
            status = self._send(delivery.event)
            with self.changed:
                if 200 <= status < 300:
                    self.pending.remove(delivery)
                    self.delivered[delivery.event["id"]] = status
                    if len(self.delivered) > 10_000:  # only recent ids are ever waited for
                        self.delivered.pop(next(iter(self.delivered)))
                else:
                    delivery.attempts += 1
                    delivery.due = now + min(0.5 * 2 ** (delivery.attempts - 1), MAX_RETRY_SECONDS)
                self.changed.notify_all()
        return bool(due)

    def _send(self, event: Json) -> int:
        payload = body_of(event)
        headers = {
            "content-type": "application/json; charset=utf-8",
            "stripe-signature": sign(payload, self.secret),
            "user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        }
        try:
            status = self.post(self.url, payload, headers)
        except httpx.HTTPError as exc:
            status = 0
            log.info("--> %s [%s] not delivered: %s", event["type"], event["id"], exc)
            return status
        log.info("--> %s [%s] <-- [%d]", event["type"], event["id"], status)
        return status

    def wait_delivered(self, event_ids: Iterable[str], timeout: float) -> bool:
        wanted = set(event_ids)
        with self.changed:
            return self.changed.wait_for(lambda: wanted <= self.delivered.keys(), timeout)


def httpx_poster(client: httpx.Client) -> Callable[[str, bytes, dict[str, str]], int]:
    def post(url: str, payload: bytes, headers: dict[str, str]) -> int:
        return client.post(url, content=payload, headers=headers).status_code

    return post


# --- the process ---------------------------------------------------------------------------


class DevStripe:
    """The emulator, its webhook forwarder, the checkout page and the state file, behind one
    HTTP server. Every use of the emulator goes through `self.lock`, so snapshots are whole."""

    def __init__(
        self,
        port: int,
        webhook_url: str,
        state_file: Path | None = None,
        post: Callable[[str, bytes, dict[str, str]], int] | None = None,
    ) -> None:
        self.lock = threading.RLock()
        # Served by the server below: the emulator never opens a socket of its own here.
        self.emulator = StripeEmulator(checkout_url_base=f"http://localhost:{port}/checkout")
        self._client = httpx.Client(timeout=10)
        self.forwarder = WebhookForwarder(
            webhook_url, self.emulator.webhook_secret, post or httpx_poster(self._client)
        )
        self.state_file = state_file
        self._stop = threading.Event()
        self._restore()
        self.server = local_server(_handler(self), port)
        self.url = api_base(self.server.server_address[1])

    # --- state ---

    def _restore(self) -> None:
        if self.state_file is None or not self.state_file.exists():
            return
        saved = json.loads(self.state_file.read_text())
        for name in STORES:
            getattr(self.emulator, name).update(saved.get(name, {}))
        self.forwarder.add(saved.get("undelivered", []))

    def save(self) -> None:
        if self.state_file is None:
            return
        # The whole save under the lock: the delivery thread and the request threads all save, and
        # two at once would share the temporary file (the second replace finds it gone) or write
        # an older snapshot over a newer one.
        with self.lock:
            with self.forwarder.changed:
                state = {name: getattr(self.emulator, name) for name in STORES}
                state["undelivered"] = [d.event for d in self.forwarder.pending]
                text = json.dumps(state)
            tmp = self.state_file.with_suffix(".tmp")
            tmp.write_text(text)
            os.replace(tmp, self.state_file)

    def _collect(self) -> bool:
        """Move the events the emulator queued to the forwarder (under the lock, so a snapshot
        never misses one); True when there were any."""
        with self.lock:
            events = self.emulator.take_events()
            # The emulator records every request for the tests; a long-running stack drops them.
            self.emulator.requests.clear()
            self.forwarder.add(events)
        return bool(events)

    # --- what the HTTP server does ---

    def api(
        self, method: str, path: str, params: Json, authorization: str, key: str | None
    ) -> tuple[int, Json, bool]:
        with self.lock:
            answer = self.emulator.handle(method, path, params, authorization, key)
        if method != "GET":
            self._collect()
            self.save()
        return answer

    def checkout(self, session_id: str, action: str, wait: float = 0.0) -> checkout_page.Outcome:
        with self.lock:
            outcome = checkout_page.act(self.emulator, session_id, action)
        self._collect()
        self.save()
        if wait and outcome.events:
            self.forwarder.wait_delivered(outcome.events, wait)
        return outcome

    def advance_clock(self, *, decline: bool = False, user: str | None = None) -> list[Json]:
        """The current period of every live subscription (of `user`, if given) ends."""
        changes = []
        with self.lock:
            emulator = self.emulator
            for sub in list(emulator.subscriptions.values()):
                customer = emulator.customers.get(sub["customer"], {})
                owner = customer.get("metadata", {}).get(META_USER)
                if sub["status"] == "canceled" or (user is not None and owner != user):
                    continue
                if sub["cancel_at_period_end"]:
                    action, events = "canceled at period end", emulator.end_period(sub["id"])
                elif sub["status"] == "past_due":
                    if decline:
                        action, events = (
                            "canceled after failed retries",
                            emulator.cancel_now(sub["id"]),
                        )
                    else:
                        action, events = (
                            "retried payment succeeded",
                            emulator.pay_renewal(sub["id"]),
                        )
                elif decline:
                    action, events = "renewal declined (past_due)", emulator.fail_renewal(sub["id"])
                else:
                    action, events = "renewed", emulator.renew(sub["id"])
                changes.append(
                    {
                        "subscription": sub["id"],
                        "user": owner,
                        "action": action,
                        "events": [e["type"] for e in events],
                        "eventIds": [e["id"] for e in events],
                    }
                )
        self._collect()
        self.save()
        return changes

    # --- running ---

    def _deliver_forever(self) -> None:
        while not self._stop.is_set():
            try:
                collected = self._collect()
                if self.forwarder.deliver_due(time.monotonic()) or collected:
                    self.save()
            except Exception:  # one failed pass must not end delivery for good: the next retries
                log.exception("webhook delivery pass failed")
            self._stop.wait(TICK_SECONDS)

    def serve_forever(self) -> None:
        deliverer = threading.Thread(target=self._deliver_forever, daemon=True)
        deliverer.start()
        try:
            self.server.serve_forever()
        finally:
            self._stop.set()
            deliverer.join(5)
            self.server.server_close()
            self._client.close()

    def start(self) -> threading.Thread:
        """Serve in a background thread (tests); `shutdown()` stops it."""
        thread = threading.Thread(target=self.serve_forever, daemon=True)
        thread.start()
        return thread

    def shutdown(self) -> None:
        self.server.shutdown()


def _handler(dev: DevStripe) -> type[BaseHTTPRequestHandler]:
    class Handler(QuietHandler):
        def _serve(self) -> None:
            body = self.body()
            url = urlsplit(self.path)
            if url.path.startswith("/v1/"):
                answer_api(self, dev.api, body)
            elif url.path.startswith("/checkout/"):
                self._checkout(url.path.removeprefix("/checkout/").strip("/"), body)
            elif url.path == "/_dev/advance-clock" and self.command == "POST":
                options = json.loads(body or "{}")
                changes = dev.advance_clock(
                    decline=bool(options.get("decline")), user=options.get("user")
                )
                ids = [i for c in changes for i in c["eventIds"]]
                delivered = dev.forwarder.wait_delivered(ids, float(options.get("wait", 0)))
                self._send(200, {"changes": changes, "delivered": delivered})
            elif url.path == "/_dev/health":
                self._send(200, {"ok": True})
            elif url.path == "/" and self.command == "GET":
                with dev.lock:
                    self._html(200, checkout_page.render_index(dev.emulator))
            else:
                self._send(404, {"error": {"message": f"Unrecognized request URL ({url.path})"}})

        do_GET = do_POST = do_DELETE = _serve

        def _checkout(self, session_id: str, body: str) -> None:
            wants_json = "application/json" in self.headers.get("accept", "")
            form = dict(parse_qsl(body))
            try:
                if self.command == "GET":
                    with dev.lock:
                        session = dev.emulator.sessions.get(session_id)
                        if session is None:
                            raise checkout_page.CheckoutError(404, "No such Checkout Session")
                        self._html(200, checkout_page.render_session(dev.emulator, session))
                    return
                wait = float(form.get("wait", 0) or 0)
                outcome = dev.checkout(session_id, form.get("action", ""), wait=min(wait, 30))
            except checkout_page.CheckoutError as err:
                if wants_json:
                    self._send(err.status, {"error": {"message": err.message}})
                else:
                    self._html(err.status, checkout_page.render_error(err.message))
                return
            if wants_json:
                delivered = set(outcome.events) <= dev.forwarder.delivered.keys()
                self._send(200, {**outcome.as_json(), "delivered": delivered})
                return
            with dev.lock:
                session = dev.emulator.sessions[session_id]
                if outcome.status == "paid":
                    assert outcome.redirect is not None
                    page = checkout_page.render_paid(dev.emulator, session, outcome.redirect)
                elif outcome.status == "requires_action":
                    page = checkout_page.render_challenge(dev.emulator, session)
                else:
                    page = checkout_page.render_session(dev.emulator, session, outcome.message)
            self._html(200, page)

        def _send(self, status: int, payload: Json, headers: dict[str, str] | None = None) -> None:
            self._write(status, json.dumps(payload).encode(), "application/json", headers or {})

        def _html(self, status: int, page: str) -> None:
            self._write(status, page.encode(), "text/html; charset=utf-8", {})

        def _write(
            self, status: int, data: bytes, content_type: str, headers: dict[str, str]
        ) -> None:
            self.write(status, data, content_type, {"cache-control": "no-store", **headers})

    return Handler


def run(port: int, gateway_port: int, state_dir: Path) -> None:
    """The `stripe` process of the dev stack (until SIGTERM/SIGINT)."""
    import signal

    dev = DevStripe(
        port,
        f"http://127.0.0.1:{gateway_port}{WEBHOOK_PATH}",
        state_file=state_dir / "stripe-dev.json",
    )

    def stop(*_: Any) -> None:
        # shutdown() waits for serve_forever to return: never call it from that thread.
        threading.Thread(target=dev.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info(
        "local Stripe on %s, checkout pages on http://localhost:%d/checkout/…, webhooks to %s",
        dev.url,
        port,
        dev.forwarder.url,
    )
    dev.serve_forever()
    dev.save()


# --- the developer's commands (`studiox dev pay`, `studiox dev advance-clock`) ----------------


def target_in(text: str) -> str:
    """The checkout to act on from a purchase or plan-change answer piped in (`curl … | studiox
    dev pay -`): its `checkoutUrl` (or `sessionId`); plain text is taken as the URL or id.
    ValueError with the answer's own error when it has no checkout."""
    try:
        answer = json.loads(text)
    except ValueError:
        return text.strip()
    if isinstance(answer, dict):
        found = answer.get("checkoutUrl") or answer.get("sessionId")
        if found:
            return str(found)
        raise ValueError(f"no checkout in that answer: {answer.get('error') or answer}")
    raise ValueError("expected a JSON object with checkoutUrl")


def session_target(target: str, default_base: str) -> tuple[str, str]:
    """(base URL, session id) from a checkout URL or a bare `cs_…` id."""
    if "://" in target:
        parts = urlsplit(target)
        session_id = parts.path.rstrip("/").rsplit("/", 1)[-1]
        return f"{parts.scheme}://{parts.netloc}", session_id
    return default_base, target.strip()


def summary(body: Json) -> list[str]:
    """One line per outcome of `pay` or `advance_clock`, for people."""
    delivered = "webhooks delivered" if body.get("delivered") else "webhooks pending"
    if "changes" in body:
        if not body["changes"]:
            return ["no live subscription"]
        return [
            f"{c['subscription']} ({c['user']}): {c['action']}: {', '.join(c['events'])}; "
            + delivered
            for c in body["changes"]
        ]
    return [f"{body['status']}: {body['message']} ({body['sessionId']}); {delivered}"]


def pay(base: str, session_id: str, action: str, wait: float = 15.0) -> tuple[int, Json]:
    reply = httpx.post(
        f"{base}/checkout/{session_id}",
        data={"action": action, "wait": str(wait)},
        headers={"accept": "application/json"},
        timeout=wait + 10,
    )
    body: Json = reply.json()
    return reply.status_code, body


def advance_clock(
    base: str, *, decline: bool, user: str | None, wait: float = 15.0
) -> tuple[int, Json]:
    reply = httpx.post(
        f"{base}/_dev/advance-clock",
        json={"decline": decline, "user": user, "wait": wait},
        timeout=wait + 10,
    )
    body: Json = reply.json()
    return reply.status_code, body
