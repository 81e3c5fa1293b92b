"""A local Stripe emulator on 127.0.0.1 for the real `stripe` library (pointed at it through
STRIPE_API_BASE), used by the tests and by the dev stack: customers, Checkout Sessions,
PaymentIntents, subscriptions, invoices and refunds over Stripe's form-encoded v1 API, with
Stripe's error shapes and its Idempotency-Key rules (the same key with the same parameters answers
the first response again; with other parameters, an idempotency_error).

What Stripe does on its own side (a customer paying on the Checkout page, a renewal, the end of a
period) is done by helper methods that change the state and queue the events Stripe would send;
`sign()` signs an event body exactly as Stripe does (`t=<unix>,v1=<hex hmac_sha256>`)."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from devstack.http_server import QuietHandler, local_server, serving
from services.credit.domain import add_months

API_VERSION = "2026-10-28.endive"
# Test-mode credentials of the emulator only: nothing real is ever signed or paid with them.
SECRET_KEY = "sk_test_studiox_double"  # noqa: S105
WEBHOOK_SECRET = "whsec_studiox_double"  # noqa: S105
PRICE_PRO = "price_pro_monthly"
PRICE_ENTERPRISE = "price_enterprise_monthly"
# Stripe's test payment methods usable by any customer.
PM_VISA = "pm_card_visa"
PM_DECLINED = "pm_card_chargeDeclined"
PM_3DS = "pm_card_authenticationRequired"

Json = dict[str, Any]


class StripeFailure(Exception):
    def __init__(self, status: int, kind: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"type": kind, "message": message, **extra}}


def not_found(kind: str, object_id: str) -> StripeFailure:
    return StripeFailure(
        404,
        "invalid_request_error",
        f"No such {kind}: '{object_id}'",
        code="resource_missing",
        param="id",
    )


def sign(payload: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """The Stripe-Signature header Stripe sends with `payload`."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


# Answers one Stripe API request: (method, path, params, authorization, idempotency key) ->
# (status, body, replayed), StripeEmulator.handle's signature.
ApiHandler = Callable[[str, str, Json, str, str | None], tuple[int, Json, bool]]


def answer_api(request: QuietHandler, handle: ApiHandler, body: str) -> None:
    """One Stripe API request over HTTP, as Stripe reads it (form-encoded parameters in the body or
    the query, the key, the idempotency key) and answers it (JSON, `request-id`, and
    `idempotent-replayed` for a replay); the emulator's server and the local Stripe both use it."""
    url = urlsplit(request.path)
    status, payload, replayed = handle(
        request.command,
        url.path,
        parse_form(body or url.query),
        request.headers.get("authorization", ""),
        request.headers.get("idempotency-key"),
    )
    headers = {"request-id": f"req_{secrets.token_hex(6)}"}
    if replayed:
        headers["idempotent-replayed"] = "true"
    request.send_json(status, payload, headers)


def parse_form(body: str) -> Json:
    """Stripe's form encoding (`a[b][0][c]=v`) back into nested dicts and lists."""
    root: Json = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        parts = re.findall(r"[^\[\]]+", key)
        node: Any = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    parsed: Json = _listify(root)
    return parsed


def _listify(node: Any) -> Any:
    if isinstance(node, dict):
        converted = {k: _listify(v) for k, v in node.items()}
        if converted and all(k.isdigit() for k in converted):
            return [converted[k] for k in sorted(converted, key=int)]
        return converted
    return node


def _bool(value: Any) -> bool:
    return str(value).lower() == "true"


@dataclass
class Recorded:
    method: str
    path: str
    params: Json
    idempotency_key: str | None


class StripeEmulator:
    def __init__(
        self,
        *,
        secret_key: str = SECRET_KEY,
        webhook_secret: str = WEBHOOK_SECRET,
        prices: dict[str, int] | None = None,
        checkout_url_base: str = "https://checkout.stripe.com/c/pay",
    ) -> None:
        self.secret_key = secret_key
        self.webhook_secret = webhook_secret
        # Where a Checkout Session's `url` points (the dev stack serves a local page there).
        self.checkout_url_base = checkout_url_base.rstrip("/")
        self.prices: dict[str, Json] = {
            price_id: {
                "id": price_id,
                "object": "price",
                "unit_amount": amount,
                "currency": "usd",
                "recurring": {"interval": "month", "interval_count": 1},
                "product": f"prod_{price_id}",
            }
            for price_id, amount in (prices or {PRICE_PRO: 1999, PRICE_ENTERPRISE: 9999}).items()
        }
        self.customers: dict[str, Json] = {}
        self.sessions: dict[str, Json] = {}
        self.intents: dict[str, Json] = {}
        self.subscriptions: dict[str, Json] = {}
        self.invoices: dict[str, Json] = {}
        self.payment_methods: dict[str, str] = {}  # saved pm id -> customer id
        # Saved cards that fail when charged: "declined" or "authentication_required".
        self.card_behaviour: dict[str, str] = {}
        self.setup_intents: dict[str, Json] = {}
        self.refunds: dict[str, Json] = {}
        # A succeeded PaymentIntent's Charge (its `latest_charge`), and disputes of charges.
        self.charges: dict[str, Json] = {}
        self.disputes: dict[str, Json] = {}
        self.requests: list[Recorded] = []
        self.outbox: list[Json] = []
        self._idempotent: dict[str, tuple[str, int, Json]] = {}
        self._lock = threading.RLock()
        double = self

        class Handler(QuietHandler):
            def _serve(self) -> None:
                answer_api(self, double.handle, self.body())

            do_GET = do_POST = do_DELETE = _serve

        self._httpd = local_server(Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"

    # --- wiring ---

    @contextmanager
    def running(self) -> Iterator[StripeEmulator]:
        with serving(self._httpd):
            yield self

    def close(self) -> None:
        """Release the listening socket when another server serves `handle()` (the dev stack)."""
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

    # --- HTTP ---

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
                return self._expand_subscription(sub, _expand(params))
            case ("GET", "invoices", [invoice_id]):
                invoice = self._get(self.invoices, "invoice", invoice_id)
                return self._expand_invoice(invoice, _expand(params))
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

    @staticmethod
    def _get(store: dict[str, Json], kind: str, object_id: str) -> Json:
        if object_id not in store:
            raise not_found(kind, object_id)
        return {k: copy.deepcopy(v) for k, v in store[object_id].items() if not k.startswith("_")}

    def _expanded(
        self, obj: Json, params: Json, field: str, store: dict[str, Json], kind: str = ""
    ) -> Json:
        """`obj` with the id in `field` replaced by the object it names when the request asks
        `expand[]=field`, as Stripe answers."""
        if field in _expand(params) and obj.get(field):
            obj[field] = self._get(store, kind or field, obj[field])
        return obj

    def _expand_subscription(self, sub: Json, expand: set[str]) -> Json:
        if "latest_invoice" in expand and sub.get("latest_invoice") in self.invoices:
            sub["latest_invoice"] = self._get(self.invoices, "invoice", sub["latest_invoice"])
        return sub

    def _expand_invoice(self, invoice: Json, expand: set[str]) -> Json:
        """`payments` (the invoice's PaymentIntents) is only sent when asked for, as by Stripe."""
        if "payments" in expand:
            stored = self.invoices[invoice["id"]]
            intent = stored.get("_payment_intent")
            invoice["payments"] = {
                "object": "list",
                "data": (
                    [
                        {
                            "id": f"inpay_{intent[3:]}",
                            "object": "invoice_payment",
                            "invoice": invoice["id"],
                            "amount_paid": stored["amount_paid"],
                            "status": "paid",
                            "payment": {"type": "payment_intent", "payment_intent": intent},
                        }
                    ]
                    if intent
                    else []
                ),
                "has_more": False,
            }
        return invoice

    # --- objects ---

    @staticmethod
    def _new_id(prefix: str) -> str:
        return f"{prefix}_{secrets.token_hex(8)}"

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

    def _customer(self, params: Json) -> str:
        customer = params.get("customer")
        if not customer:
            raise StripeFailure(400, "invalid_request_error", "Missing customer", param="customer")
        if customer not in self.customers:
            raise not_found("customer", customer)
        return str(customer)

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
        session_id = f"cs_test_{secrets.token_hex(12)}"
        session = {
            "id": session_id,
            "object": "checkout.session",
            "mode": mode,
            "status": "open",
            "payment_status": "unpaid",
            "url": f"{self.checkout_url_base}/{session_id}",
            "customer": customer,
            "client_reference_id": params.get("client_reference_id"),
            "metadata": params.get("metadata", {}),
            "amount_total": total,
            "currency": "usd",
            "payment_intent": None,
            "subscription": None,
            "invoice": None,
            "success_url": params["success_url"],
            "cancel_url": params.get("cancel_url"),
            "created": int(time.time()),
            "expires_at": int(time.time()) + 86400,
            "livemode": False,
            # Kept to act on completion (Stripe keeps them too).
            "_line_items": items,
            "_payment_intent_data": params.get("payment_intent_data", {}),
            "_subscription_data": params.get("subscription_data", {}),
        }
        self.sessions[session_id] = session
        return self._public(session)

    @staticmethod
    def _public(obj: Json) -> Json:
        return {k: copy.deepcopy(v) for k, v in obj.items() if not k.startswith("_")}

    def _intent(
        self, *, amount: int, customer: str, metadata: Json, status: str, pm: str | None
    ) -> Json:
        intent_id = self._new_id("pi")
        intent = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_received": amount if status == "succeeded" else 0,
            "currency": "usd",
            "customer": customer,
            "payment_method": pm,
            "status": status,
            "metadata": metadata,
            "client_secret": f"{intent_id}_secret_{secrets.token_hex(8)}",
            "created": int(time.time()),
            "livemode": False,
            "latest_charge": None,
        }
        self.intents[intent_id] = intent
        if status == "succeeded":
            self._charge_of(intent)
        return intent

    def _charge_of(self, intent: Json) -> Json:
        """The Charge of a succeeded PaymentIntent (made once, when it succeeds)."""
        if intent.get("latest_charge") in self.charges:
            return self.charges[intent["latest_charge"]]
        charge = {
            "id": self._new_id("ch"),
            "object": "charge",
            "amount": intent["amount"],
            "amount_captured": intent["amount"],
            "amount_refunded": 0,
            "refunded": False,
            "disputed": False,
            "currency": intent["currency"],
            "customer": intent["customer"],
            "payment_intent": intent["id"],
            "status": "succeeded",
            "paid": True,
            "created": int(time.time()),
            "livemode": False,
        }
        self.charges[charge["id"]] = charge
        intent["latest_charge"] = charge["id"]
        return charge

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
        confirm = _bool(params.get("confirm"))
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

    def _subscription(self, customer: str, price: Json, metadata: Json) -> Json:
        start = int(time.time())
        end = _plus_month(start)
        sub_id = self._new_id("sub")
        sub = {
            "id": sub_id,
            "object": "subscription",
            "customer": customer,
            "status": "active",
            "cancel_at_period_end": False,
            "canceled_at": None,
            "ended_at": None,
            "metadata": metadata,
            "items": {
                "object": "list",
                "data": [
                    {
                        "id": self._new_id("si"),
                        "object": "subscription_item",
                        "price": copy.deepcopy(price),
                        "quantity": 1,
                        "current_period_start": start,
                        "current_period_end": end,
                    }
                ],
            },
            "latest_invoice": None,
            "created": start,
            "livemode": False,
        }
        self.subscriptions[sub_id] = sub
        return sub

    def _item(self, sub: Json) -> Json:
        item: Json = sub["items"]["data"][0]
        return item

    def _invoice(self, sub: Json, *, paid: bool, reason: str, amount: int | None = None) -> Json:
        item = self._item(sub)
        due = item["price"]["unit_amount"] if amount is None else amount
        invoice = {
            "id": self._new_id("in"),
            "object": "invoice",
            "customer": sub["customer"],
            "parent": {
                "type": "subscription_details",
                "subscription_details": {
                    "subscription": sub["id"],
                    "metadata": copy.deepcopy(sub["metadata"]),
                },
            },
            "status": "open",
            "billing_reason": reason,
            "amount_due": due,
            "amount_paid": 0,
            "currency": "usd",
            "lines": {
                "object": "list",
                "data": [
                    {
                        "id": self._new_id("il"),
                        "amount": due,
                        "period": {
                            "start": item["current_period_start"],
                            "end": item["current_period_end"],
                        },
                        "pricing": {"price_details": {"price": item["price"]["id"]}},
                    }
                ],
            },
            "created": int(time.time()),
            "livemode": False,
        }
        self.invoices[invoice["id"]] = invoice
        sub["latest_invoice"] = invoice["id"]
        if paid:
            self._pay_invoice(invoice)
        return invoice

    def _pay_invoice(self, invoice: Json) -> None:
        """The invoice's PaymentIntent succeeds (none for an invoice of 0, as at Stripe)."""
        invoice["status"] = "paid"
        invoice["amount_paid"] = invoice["amount_due"]
        if invoice["amount_due"] > 0:
            intent = self._intent(
                amount=invoice["amount_due"],
                customer=invoice["customer"],
                metadata={},
                status="succeeded",
                pm=PM_VISA,
            )
            invoice["_payment_intent"] = intent["id"]

    def _list_sessions(self, params: Json) -> Json:
        found = [
            self._public(session)
            for session in self.sessions.values()
            if params.get("customer") in (None, session["customer"])
            and params.get("status") in (None, session["status"])
        ]
        found.sort(key=lambda s: s["created"], reverse=True)  # newest first, as Stripe lists
        url = "/v1/checkout/sessions"
        return {"object": "list", "data": found, "has_more": False, "url": url}

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

    def _create_refund(self, params: Json) -> Json:
        intent = self.intents.get(str(params.get("payment_intent")))
        if intent is None:
            raise not_found("payment_intent", str(params.get("payment_intent")))
        refundable = intent["amount_received"] - intent.get("_refunded", 0)
        amount = int(params.get("amount", refundable))
        if intent["status"] != "succeeded" or refundable <= 0:
            raise StripeFailure(
                400,
                "invalid_request_error",
                "Charge has already been refunded.",
                code="charge_already_refunded",
            )
        if not 0 < amount <= refundable:
            raise StripeFailure(400, "invalid_request_error", "Invalid amount", param="amount")
        intent["_refunded"] = intent.get("_refunded", 0) + amount
        refund = {
            "id": self._new_id("re"),
            "object": "refund",
            "amount": amount,
            "currency": intent["currency"],
            "payment_intent": intent["id"],
            "status": "succeeded",
            "metadata": params.get("metadata", {}),
            "created": int(time.time()),
        }
        self.refunds[refund["id"]] = refund
        self._queue("refund.created", refund)
        charge = self.charges.get(intent.get("latest_charge") or "")
        if charge is not None:
            refund["charge"] = charge["id"]
            charge["amount_refunded"] += amount
            charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
            self._queue("charge.refunded", charge)
        return copy.deepcopy(refund)

    def _list_disputes(self, params: Json) -> Json:
        found = [
            self._public(d)
            for d in self.disputes.values()
            if params.get("payment_intent") in (None, d["payment_intent"])
            and params.get("charge") in (None, d["charge"])
        ]
        return {"object": "list", "data": found, "has_more": False, "url": "/v1/disputes"}

    def _list_subscriptions(self, params: Json) -> Json:
        status = params.get("status")

        def listed(sub: Json) -> bool:
            if status == "all":
                return True
            if status:
                return bool(sub["status"] == status)
            return bool(sub["status"] != "canceled")  # Stripe's default

        expand = {e.removeprefix("data.") for e in _expand(params)}
        found = [
            self._expand_subscription(copy.deepcopy(sub), expand)
            for sub in self.subscriptions.values()
            if sub["customer"] == params.get("customer") and listed(sub)
        ]
        return {"object": "list", "data": found, "has_more": False, "url": "/v1/subscriptions"}

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
            sub["cancel_at_period_end"] = _bool(params["cancel_at_period_end"])
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

    # --- Stripe's side: what happens outside our API calls ---

    def complete_checkout(self, session_id: str) -> list[Json]:
        """The customer pays on the Checkout page; returns the events Stripe sends."""
        with self._lock:
            session = self.sessions[session_id]
            assert session["status"] == "open", session["status"]
            session["status"] = "complete"
            session["payment_status"] = "paid"
            events: list[Json] = []
            if session["mode"] == "payment":
                intent = self._intent(
                    amount=session["amount_total"],
                    customer=session["customer"],
                    metadata=session["_payment_intent_data"].get("metadata", {}),
                    status="succeeded",
                    pm=PM_VISA,
                )
                session["payment_intent"] = intent["id"]
                events.append(self._queue("payment_intent.succeeded", intent))
            else:
                price = self.prices[session["_line_items"][0]["price"]]
                sub = self._subscription(
                    session["customer"],
                    price,
                    session["_subscription_data"].get("metadata", {}),
                )
                invoice = self._invoice(sub, paid=True, reason="subscription_create")
                session["subscription"] = sub["id"]
                session["invoice"] = invoice["id"]
                events.append(self._queue("customer.subscription.created", sub))
                events.append(self._queue("invoice.paid", invoice))
            events.append(self._queue("checkout.session.completed", self._public(session)))
            return events

    def authenticate_intent(self, intent_id: str) -> list[Json]:
        """The customer completes 3-D Secure for a `requires_action` PaymentIntent."""
        with self._lock:
            intent = self.intents[intent_id]
            assert intent["status"] == "requires_action", intent["status"]
            intent["status"] = "succeeded"
            intent["amount_received"] = intent["amount"]
            intent.pop("next_action", None)
            self._charge_of(intent)
            return [self._queue("payment_intent.succeeded", intent)]

    def decline_checkout(self, session_id: str) -> list[Json]:
        """The customer's card is declined on the Checkout page: the session stays open (they may
        try another card); a payment-mode session's PaymentIntent reports the failure."""
        with self._lock:
            session = self.sessions[session_id]
            assert session["status"] == "open", session["status"]
            if session["mode"] != "payment":
                return []
            intent = self._intent(
                amount=session["amount_total"],
                customer=session["customer"],
                metadata=session["_payment_intent_data"].get("metadata", {}),
                status="requires_payment_method",
                pm=PM_DECLINED,
            )
            intent["last_payment_error"] = {"code": "card_declined", "decline_code": "generic"}
            return [self._queue("payment_intent.payment_failed", intent)]

    def expire_checkout(self, session_id: str) -> list[Json]:
        with self._lock:
            session = self.sessions[session_id]
            session["status"] = "expired"
            return [self._queue("checkout.session.expired", self._public(session))]

    def renew(self, sub_id: str) -> list[Json]:
        """The billing period ends and the renewal invoice is paid."""
        with self._lock:
            sub = self.subscriptions[sub_id]
            item = self._item(sub)
            before = copy.deepcopy(item)
            item["current_period_start"] = item["current_period_end"]
            item["current_period_end"] = _plus_month(item["current_period_end"])
            sub["status"] = "active"
            invoice = self._invoice(sub, paid=True, reason="subscription_cycle")
            return [
                self._queue(
                    "customer.subscription.updated",
                    sub,
                    previous={"items": {"data": [before]}},
                ),
                self._queue("invoice.paid", invoice),
            ]

    def fail_renewal(self, sub_id: str) -> list[Json]:
        """The renewal payment fails: the subscription goes past_due (Stripe retries)."""
        with self._lock:
            sub = self.subscriptions[sub_id]
            item = self._item(sub)
            item["current_period_start"] = item["current_period_end"]
            item["current_period_end"] = _plus_month(item["current_period_end"])
            sub["status"] = "past_due"
            invoice = self._invoice(sub, paid=False, reason="subscription_cycle")
            return [
                self._queue("invoice.payment_failed", invoice),
                self._queue("customer.subscription.updated", sub, previous={"status": "active"}),
            ]

    def pay_renewal(self, sub_id: str) -> list[Json]:
        """Stripe's retry of a past_due renewal succeeds: its invoice is paid, the subscription is
        active again (same period)."""
        with self._lock:
            sub = self.subscriptions[sub_id]
            invoice = self.invoices[sub["latest_invoice"]]
            assert invoice["status"] == "open", invoice["status"]
            self._pay_invoice(invoice)
            previous = {"status": sub["status"]}
            sub["status"] = "active"
            return [
                self._queue("invoice.paid", invoice),
                self._queue("customer.subscription.updated", sub, previous=previous),
            ]

    def end_period(self, sub_id: str) -> list[Json]:
        """The period ends for a subscription set to cancel at period end."""
        with self._lock:
            sub = self.subscriptions[sub_id]
            assert sub["cancel_at_period_end"]
            return self.cancel_now(sub_id)

    def cancel_now(self, sub_id: str) -> list[Json]:
        with self._lock:
            sub = self.subscriptions.get(sub_id)
            if sub is None:
                raise not_found("subscription", sub_id)
            sub["status"] = "canceled"
            sub["canceled_at"] = sub["ended_at"] = int(time.time())
            return [self._queue("customer.subscription.deleted", sub)]

    def refund_payment(self, intent_id: str, amount: int | None = None) -> list[Json]:
        """A refund made outside our API (the Dashboard, support): the events Stripe sends."""
        with self._lock:
            params: Json = {"payment_intent": intent_id}
            if amount is not None:
                params["amount"] = str(amount)
            before = len(self.outbox)
            self._create_refund(params)
            return list(self.outbox[before:])

    def open_dispute(
        self, intent_id: str, amount: int | None = None, reason: str = "fraudulent"
    ) -> list[Json]:
        """The payer disputes the payment with their bank: Stripe withdraws the amount."""
        with self._lock:
            charge = self._charge_of(self.intents[intent_id])
            dispute = {
                "id": self._new_id("dp"),
                "object": "dispute",
                "amount": charge["amount"] if amount is None else amount,
                "charge": charge["id"],
                "payment_intent": intent_id,
                "currency": charge["currency"],
                "reason": reason,
                "status": "needs_response",
                "is_charge_refundable": False,
                "created": int(time.time()),
                "livemode": False,
            }
            self.disputes[dispute["id"]] = dispute
            charge["disputed"] = True
            charge["dispute"] = dispute["id"]
            return [
                self._queue("charge.dispute.created", dispute),
                self._queue("charge.dispute.funds_withdrawn", dispute),
            ]

    def close_dispute(self, dispute_id: str, *, won: bool) -> list[Json]:
        """The bank decides: won (the funds come back) or lost."""
        with self._lock:
            dispute = self.disputes[dispute_id]
            dispute["status"] = "won" if won else "lost"
            events = [self._queue("charge.dispute.closed", dispute)]
            if won:
                events.append(self._queue("charge.dispute.funds_reinstated", dispute))
            return events

    # --- saved cards (Checkout in setup mode) and off-session payments ---

    def _create_setup_session(self, params: Json) -> Json:
        if not params.get("success_url"):
            raise StripeFailure(
                400, "invalid_request_error", "Missing success_url", param="success_url"
            )
        customer = self._customer(params)
        session_id = f"cs_test_{secrets.token_hex(12)}"
        session = {
            "id": session_id,
            "object": "checkout.session",
            "mode": "setup",
            "status": "open",
            "payment_status": "no_payment_required",
            "url": f"{self.checkout_url_base}/{session_id}",
            "customer": customer,
            "client_reference_id": params.get("client_reference_id"),
            "metadata": params.get("metadata", {}),
            "amount_total": None,
            "currency": params.get("currency"),
            "payment_intent": None,
            "setup_intent": None,
            "subscription": None,
            "invoice": None,
            "success_url": params["success_url"],
            "cancel_url": params.get("cancel_url"),
            "created": int(time.time()),
            "expires_at": int(time.time()) + 86400,
            "livemode": False,
            "_setup_intent_data": params.get("setup_intent_data", {}),
        }
        self.sessions[session_id] = session
        return self._public(session)

    def complete_setup(self, session_id: str, behaviour: str = "ok") -> list[Json]:
        """The customer saves a card on a setup-mode Checkout page; `behaviour` is how the card
        answers later off-session charges ("ok", "declined", "authentication_required")."""
        with self._lock:
            session = self.sessions[session_id]
            assert session["mode"] == "setup", session["mode"]
            assert session["status"] == "open", session["status"]
            pm = self.save_payment_method(session["customer"])
            self.set_card_behaviour(pm, behaviour)
            seti = {
                "id": self._new_id("seti"),
                "object": "setup_intent",
                "customer": session["customer"],
                "payment_method": pm,
                "status": "succeeded",
                "usage": "off_session",
                "metadata": session["_setup_intent_data"].get("metadata", {}),
                "created": int(time.time()),
                "livemode": False,
            }
            self.setup_intents[seti["id"]] = seti
            session["status"] = "complete"
            session["setup_intent"] = seti["id"]
            return [
                self._queue("setup_intent.succeeded", seti),
                self._queue("checkout.session.completed", self._public(session)),
            ]

    def set_card_behaviour(self, pm: str, behaviour: str) -> None:
        assert behaviour in ("ok", "declined", "authentication_required"), behaviour
        with self._lock:
            if behaviour == "ok":
                self.card_behaviour.pop(pm, None)
            else:
                self.card_behaviour[pm] = behaviour

    def _refuse_saved_card(self, customer: str, amount: int, params: Json, pm: str) -> None:
        """A saved card that fails: the PaymentIntent is left requiring a payment method, and the
        answer is a card_error carrying it (off-session, authentication cannot happen)."""
        code = self.card_behaviour[pm]
        if code == "declined":
            code = "card_declined"
        intent = self._intent(
            amount=amount,
            customer=customer,
            metadata=params.get("metadata", {}),
            status="requires_payment_method",
            pm=pm,
        )
        intent["last_payment_error"] = {"code": code, "type": "card_error"}
        self._queue("payment_intent.payment_failed", intent)
        raise StripeFailure(
            402,
            "card_error",
            "Your card was declined."
            if code == "card_declined"
            else "This payment requires authentication.",
            code=code,
            payment_intent=copy.deepcopy(intent),
        )

    def save_payment_method(self, customer_id: str) -> str:
        with self._lock:
            pm = self._new_id("pm")
            self.payment_methods[pm] = customer_id
            return pm

    # --- events ---

    def event(
        self, kind: str, obj: Json, *, previous: Json | None = None, created: int | None = None
    ) -> Json:
        data: Json = {"object": self._public(obj)}
        if previous is not None:
            data["previous_attributes"] = copy.deepcopy(previous)
        return {
            "id": f"evt_{secrets.token_hex(12)}",
            "object": "event",
            "api_version": API_VERSION,
            "created": int(time.time()) if created is None else created,
            "data": data,
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": kind,
        }

    def _queue(self, kind: str, obj: Json, *, previous: Json | None = None) -> Json:
        event = self.event(kind, obj, previous=previous)
        self.outbox.append(event)
        return event

    def take_events(self) -> list[Json]:
        """Events queued since the last call (what Stripe would deliver), oldest first."""
        with self._lock:
            events, self.outbox = self.outbox, []
            return events

    def writes(self) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.method in ("POST", "DELETE")]


def _expand(params: Json) -> set[str]:
    expand = params.get("expand") or []
    return {str(e) for e in (expand if isinstance(expand, list) else [expand])}


def _plus_month(unix: int) -> int:
    moment = datetime.fromtimestamp(unix, UTC)
    return int(add_months(moment, 1).timestamp())


def body_of(event: Json) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode()
