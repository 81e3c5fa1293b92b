"""The emulator's API: Stripe's v1 routes over HTTP, with its key and Idempotency-Key rules,
on a server of its own on 127.0.0.1 (or behind the dev stack's)."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from http.server import ThreadingHTTPServer
from typing import Any

from devstack.http_server import QuietHandler, local_server, serving
from devstack.stripe_emulator.stripe_side import StripeSide
from devstack.stripe_emulator.wire import (
    PM_3DS,
    PM_DECLINED,
    PM_VISA,
    PRICE_ENTERPRISE,
    PRICE_PRO,
    Json,
    Recorded,
    StripeFailure,
    answer_api,
    as_bool,
    expansions,
    listing,
    not_found,
)


class StripeEmulator(StripeSide):
    """The emulator: Stripe's v1 API over HTTP on 127.0.0.1, and the state behind it."""

    @cached_property
    def _httpd(self) -> ThreadingHTTPServer:
        """The emulator's own listening socket on 127.0.0.1, opened when first needed: the dev
        stack serves `handle()` behind a server of its own and never opens it."""
        double = self

        class Handler(QuietHandler):
            def _serve(self) -> None:
                answer_api(self, double.handle, self.body())

            do_GET = do_POST = do_DELETE = _serve

        return local_server(Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @contextmanager
    def running(self) -> Iterator[StripeEmulator]:
        with serving(self._httpd):
            yield self

    def close(self) -> None:
        """Release the listening socket, if it was opened."""
        if "_httpd" in self.__dict__:
            self._httpd.server_close()

    def settings(self) -> dict[str, Any]:
        """Settings overrides (field names of services.kit.settings.Settings)."""
        return {
            "stripe_secret_key": self.secret_key,
            "stripe_webhook_secret": self.webhook_secret,
            "stripe_api_base": self.url,
            "stripe_price_pro": PRICE_PRO,
            "stripe_price_enterprise": PRICE_ENTERPRISE,
        }

    def environment(self) -> dict[str, str]:
        """The same, as environment variables (for real processes)."""
        return {key.upper(): str(value) for key, value in self.settings().items()}

    def handle(
        self, method: str, path: str, params: Json, authorization: str, key: str | None
    ) -> tuple[int, Json, bool]:
        with self._lock:
            self.requests.append(Recorded(method, path, params, key))
            if authorization != f"Bearer {self.secret_key}":
                return (
                    401,
                    {"error": {"type": "invalid_request_error", "message": "Invalid API Key"}},
                    False,
                )
            fingerprint = json.dumps([method, path, params], sort_keys=True)
            if method == "POST" and key:
                seen = self._idempotent.get(key)
                if seen is not None:
                    if seen[0] != fingerprint:
                        return (
                            400,
                            {
                                "error": {
                                    "type": "idempotency_error",
                                    "message": "Keys for idempotent requests can only be used "
                                    "with the same parameters they were first used with.",
                                }
                            },
                            False,
                        )
                    return seen[1], copy.deepcopy(seen[2]), True
            try:
                status, body = 200, self._route(method, path, params)
            except StripeFailure as failure:
                status, body = failure.status, failure.body
            if method == "POST" and key and status < 500:
                self._idempotent[key] = (fingerprint, status, copy.deepcopy(body))
            return status, body, False

    def _route(self, method: str, path: str, params: Json) -> Json:
        parts = path.strip("/").split("/")
        if parts[0] != "v1" or len(parts) < 2:
            raise StripeFailure(404, "invalid_request_error", f"Unrecognized request URL ({path})")
        resource, rest = "/".join(parts[1:3]), parts[3:]
        if parts[1] != "checkout":
            resource, rest = parts[1], parts[2:]
        match (method, resource, rest):
            case ("POST", "customers", []):
                return self._create_customer(params)
            case ("GET", "customers", [cid]):
                return self._get(self.customers, "customer", cid)
            case ("POST", "checkout/sessions", []):
                return self._create_session(params)
            case ("GET", "checkout/sessions", []):
                return self._list_sessions(params)
            case ("GET", "checkout/sessions", [sid]):
                session = self._get(self.sessions, "checkout.session", sid)
                return self._expanded(session, params, "setup_intent", self.setup_intents)
            case ("GET", "setup_intents", [seti]):
                return self._get(self.setup_intents, "setup_intent", seti)
            case ("POST", "checkout/sessions", [sid, "expire"]):
                return self._expire_session(sid)
            case ("POST", "payment_intents", []):
                return self._create_intent(params)
            case ("GET", "payment_intents", [pid]):
                intent = self._get(self.intents, "payment_intent", pid)
                return self._expanded(intent, params, "latest_charge", self.charges, "charge")
            case ("GET", "charges", [charge_id]):
                return self._get(self.charges, "charge", charge_id)
            case ("GET", "disputes", []):
                return self._list_disputes(params)
            case ("GET", "disputes", [dispute_id]):
                return self._get(self.disputes, "dispute", dispute_id)
            case ("GET", "subscriptions", []):
                return self._list_subscriptions(params)
            case ("GET", "subscriptions", [sub_id]):
                sub = self._get(self.subscriptions, "subscription", sub_id)
                return self._expand_subscription(sub, expansions(params))
            case ("GET", "invoices", [invoice_id]):
                invoice = self._get(self.invoices, "invoice", invoice_id)
                return self._expand_invoice(invoice, expansions(params))
            case ("POST", "refunds", []):
                return self._create_refund(params)
            case ("GET", "refunds", [refund_id]):
                return self._get(self.refunds, "refund", refund_id)
            case ("POST", "subscriptions", [sub_id]):
                return self._update_subscription(sub_id, params)
            case ("DELETE", "subscriptions", [sub_id]):
                canceled: Json = self.cancel_now(sub_id)[-1]["data"]["object"]
                return canceled
        raise StripeFailure(404, "invalid_request_error", f"Unrecognized request URL ({path})")

    def _create_customer(self, params: Json) -> Json:
        customer = {
            "id": self._new_id("cus"),
            "object": "customer",
            "email": params.get("email"),
            "metadata": params.get("metadata", {}),
            "created": int(time.time()),
            "livemode": False,
        }
        self.customers[customer["id"]] = customer
        self._queue("customer.created", customer)
        return copy.deepcopy(customer)

    def _create_session(self, params: Json) -> Json:
        mode = params.get("mode")
        if mode not in ("payment", "subscription", "setup"):
            raise StripeFailure(400, "invalid_request_error", "Invalid mode", param="mode")
        if mode == "setup":
            return self._create_setup_session(params)
        if not params.get("success_url"):
            raise StripeFailure(
                400, "invalid_request_error", "Missing success_url", param="success_url"
            )
        customer = self._customer(params)
        items = params.get("line_items") or []
        if not items:
            raise StripeFailure(
                400, "invalid_request_error", "Missing line_items", param="line_items"
            )
        total = 0
        for index, item in enumerate(items):
            quantity = int(item.get("quantity", 1))
            if "price" in item:
                price = self.prices.get(item["price"])
                if price is None:
                    raise not_found("price", item["price"])
                if (mode == "subscription") != ("recurring" in price):
                    raise StripeFailure(
                        400, "invalid_request_error", "Price/mode mismatch", param="line_items"
                    )
                total += price["unit_amount"] * quantity
            elif mode == "payment" and "price_data" in item:
                total += int(item["price_data"]["unit_amount"]) * quantity
            else:
                raise StripeFailure(
                    400,
                    "invalid_request_error",
                    "line item needs a price",
                    param=f"line_items[{index}]",
                )
        return self._open_session(
            params,
            customer,
            mode=mode,
            payment_status="unpaid",
            amount_total=total,
            currency="usd",
            # Kept to act on completion (Stripe keeps them too).
            _line_items=items,
            _payment_intent_data=params.get("payment_intent_data", {}),
            _subscription_data=params.get("subscription_data", {}),
        )

    def _create_intent(self, params: Json) -> Json:
        customer = self._customer(params)
        amount = int(params.get("amount", 0))
        if amount < 50:
            raise StripeFailure(400, "invalid_request_error", "Amount too small", param="amount")
        pm = params.get("payment_method")
        known = {PM_VISA, PM_DECLINED, PM_3DS}
        if pm and pm not in known and self.payment_methods.get(pm) != customer:
            raise StripeFailure(
                400,
                "invalid_request_error",
                f"No such PaymentMethod: '{pm}'",
                param="payment_method",
                code="resource_missing",
            )
        confirm = as_bool(params.get("confirm"))
        if confirm and pm in self.card_behaviour:
            self._refuse_saved_card(customer, amount, params, pm)
        status = "requires_payment_method" if not pm else "requires_confirmation"
        intent = self._intent(
            amount=amount,
            customer=customer,
            metadata=params.get("metadata", {}),
            status=status,
            pm=pm,
        )
        self._queue("payment_intent.created", intent)
        if confirm and pm:
            if pm == PM_DECLINED:
                intent["status"] = "requires_payment_method"
                intent["last_payment_error"] = {"code": "card_declined"}
                self._queue("payment_intent.payment_failed", intent)
                raise StripeFailure(
                    402,
                    "card_error",
                    "Your card was declined.",
                    code="card_declined",
                    decline_code="generic_decline",
                    payment_intent=copy.deepcopy(intent),
                )
            if pm == PM_3DS:
                intent["status"] = "requires_action"
                intent["next_action"] = {"type": "use_stripe_sdk"}
            else:
                intent["status"] = "succeeded"
                intent["amount_received"] = amount
                self._charge_of(intent)
                self._queue("payment_intent.succeeded", intent)
        return copy.deepcopy(intent)

    def _list_sessions(self, params: Json) -> Json:
        found = [
            self._public(session)
            for session in self.sessions.values()
            if params.get("customer") in (None, session["customer"])
            and params.get("status") in (None, session["status"])
        ]
        found.sort(key=lambda s: s["created"], reverse=True)  # newest first, as Stripe lists
        return listing(found, "/v1/checkout/sessions")

    def _expire_session(self, session_id: str) -> Json:
        session = self.sessions.get(session_id)
        if session is None:
            raise not_found("checkout.session", session_id)
        if session["status"] != "open":
            raise StripeFailure(
                400,
                "invalid_request_error",
                'Only Checkout Sessions with a status in ["open"] can be expired.',
            )
        self.expire_checkout(session_id)
        return self._public(session)

    def _list_disputes(self, params: Json) -> Json:
        found = [
            self._public(d)
            for d in self.disputes.values()
            if params.get("payment_intent") in (None, d["payment_intent"])
            and params.get("charge") in (None, d["charge"])
        ]
        return listing(found, "/v1/disputes")

    def _list_subscriptions(self, params: Json) -> Json:
        status = params.get("status")

        def listed(sub: Json) -> bool:
            if status == "all":
                return True
            if status:
                return bool(sub["status"] == status)
            return bool(sub["status"] != "canceled")  # Stripe's default

        expand = {e.removeprefix("data.") for e in expansions(params)}
        found = [
            self._expand_subscription(copy.deepcopy(sub), expand)
            for sub in self.subscriptions.values()
            if sub["customer"] == params.get("customer") and listed(sub)
        ]
        return listing(found, "/v1/subscriptions")

    def _update_subscription(self, sub_id: str, params: Json) -> Json:
        sub = self.subscriptions.get(sub_id)
        if sub is None:
            raise not_found("subscription", sub_id)
        if sub["status"] == "canceled":
            raise StripeFailure(
                400,
                "invalid_request_error",
                "A canceled subscription can only update its cancellation_details and metadata.",
            )
        before = copy.deepcopy(sub)
        if "cancel_at_period_end" in params:
            sub["cancel_at_period_end"] = as_bool(params["cancel_at_period_end"])
        if "metadata" in params:
            sub["metadata"] = {**sub["metadata"], **params["metadata"]}
        proration = None
        for change in params.get("items", []):
            item = self._item(sub)
            if change.get("id") not in (None, item["id"]):
                raise not_found("subscription_item", change["id"])
            if "price" in change:
                price = self.prices.get(change["price"])
                if price is None:
                    raise not_found("price", change["price"])
                old = item["price"]["unit_amount"]
                item["price"] = copy.deepcopy(price)
                if params.get("proration_behavior") == "always_invoice":
                    proration = max(price["unit_amount"] - old, 0)
        if proration is not None:
            self._queue(
                "invoice.paid",
                self._invoice(sub, paid=True, reason="subscription_update", amount=proration),
            )
        changed = {k: before[k] for k in before if before[k] != sub[k]}
        self._queue("customer.subscription.updated", sub, previous=changed)
        return copy.deepcopy(sub)
