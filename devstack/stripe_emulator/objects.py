"""Stripe's objects as its API builds them: customers, PaymentIntents and their Charges,
subscriptions, invoices and refunds, and their expanded views."""

from __future__ import annotations

import copy
import secrets
import time
from typing import Any

from devstack.stripe_emulator.state import EmulatorState
from devstack.stripe_emulator.wire import (
    PM_VISA,
    Json,
    StripeFailure,
    expansions,
    not_found,
    plus_month,
)


class StripeObjects(EmulatorState):
    """Building blocks of the routes and of Stripe's side; each caller holds the lock."""

    def _customer(self, params: Json) -> str:
        customer = params.get("customer")
        if not customer:
            raise StripeFailure(400, "invalid_request_error", "Missing customer", param="customer")
        if customer not in self.customers:
            raise not_found("customer", customer)
        return str(customer)

    def _open_session(self, params: Json, customer: str, **fields: Any) -> Json:
        """A new open Checkout Session: the fields every mode has, then the mode's `fields`."""
        session_id = f"cs_test_{secrets.token_hex(12)}"
        session = {
            "id": session_id,
            "object": "checkout.session",
            "status": "open",
            "url": f"{self.checkout_url_base}/{session_id}",
            "customer": customer,
            "client_reference_id": params.get("client_reference_id"),
            "metadata": params.get("metadata", {}),
            "payment_intent": None,
            "subscription": None,
            "invoice": None,
            "success_url": params["success_url"],
            "cancel_url": params.get("cancel_url"),
            "created": int(time.time()),
            "expires_at": int(time.time()) + 86400,
            "livemode": False,
            **fields,
        }
        self.sessions[session_id] = session
        return self._public(session)

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

    def _checkout_intent(self, session: Json, *, status: str, pm: str) -> Json:
        """The PaymentIntent a payment-mode Checkout Session creates when the customer pays."""
        return self._intent(
            amount=session["amount_total"],
            customer=session["customer"],
            metadata=session["_payment_intent_data"].get("metadata", {}),
            status=status,
            pm=pm,
        )

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

    def _subscription(self, customer: str, price: Json, metadata: Json) -> Json:
        start = int(time.time())
        end = plus_month(start)
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

    def _expanded(
        self, obj: Json, params: Json, field: str, store: dict[str, Json], kind: str = ""
    ) -> Json:
        """`obj` with the id in `field` replaced by the object it names when the request asks
        `expand[]=field`, as Stripe answers."""
        if field in expansions(params) and obj.get(field):
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
