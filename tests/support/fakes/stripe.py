"""Stripe in memory, behind billing's own StripeApi interface: objects as the plain dicts the API
returns (read by services.billing.stripe_objects), Idempotency-Keys honoured (a repeated key
returns the first object), unknown ids StripeObjectNotFound. Test helpers play the buyer and Stripe
(pay a session, refund, dispute, subscribe) and build events."""

from __future__ import annotations

import copy
import itertools
import time
from typing import Any

from services.billing.domain import CreditPack
from services.billing.stripe_api import (
    CardDeclined,
    ReturnUrls,
    StripeApi,
    StripeObjectNotFound,
    StripeRefusedRequest,
    direct_purchase_metadata,
    plan_metadata,
    purchase_metadata,
)
from services.billing.stripe_objects import META_PLAN, META_PURCHASE, META_USER
from tests.support.fakes.journal import Journal

Json = dict[str, Any]
DECLINED_CARD = "pm_card_chargeDeclined"
AUTHENTICATED_CARD = "pm_card_authenticationRequired"
MONTH = 30 * 24 * 3600


class FakeStripe(StripeApi):
    # No super().__init__(): no HTTP client.
    def __init__(self, journal: Journal | None = None) -> None:
        self.journal = journal or Journal()
        self.objects: dict[str, Json] = {}
        self.disputes: dict[str, list[Json]] = {}
        self._keys: dict[str, str] = {}
        self._ids = itertools.count(1)

    async def close(self) -> None:
        return None

    # --- plumbing ---

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):06d}"

    def _get(self, object_id: str, kind: str) -> Json:
        found = self.objects.get(object_id)
        if found is None or found["object"] != kind:
            raise StripeObjectNotFound("Stripe object not found")
        return found

    def _idempotent(self, key: str, make: Any) -> Json:
        if key in self._keys:
            return copy.deepcopy(self.objects[self._keys[key]])
        created: Json = make()
        self.objects[created["id"]] = created
        self._keys[key] = created["id"]
        return copy.deepcopy(created)

    def _invoice(self, sub: Json) -> Json | None:
        latest = sub.get("latest_invoice")
        return copy.deepcopy(self.objects[latest]) if latest else None

    # --- StripeApi ---

    async def create_customer(self, *, user_id: str, email: str | None, key: str) -> str:
        self.journal.add("stripe.create_customer")
        customer = self._idempotent(
            key,
            lambda: {
                "id": self._new_id("cus"),
                "object": "customer",
                "email": email,
                "metadata": {META_USER: user_id},
            },
        )
        return str(customer["id"])

    def _session(self, mode: str, customer_id: str, metadata: dict[str, str], **extra: Any) -> Json:
        session_id = self._new_id("cs")
        return {
            "id": session_id,
            "object": "checkout.session",
            "mode": mode,
            "customer": customer_id,
            "status": "open",
            "payment_status": "unpaid",
            "url": f"https://checkout.test/{session_id}",
            "metadata": metadata,
            "payment_intent": None,
            "subscription": None,
            "expires_at": int(time.time()) + 24 * 3600,
            **extra,
        }

    async def checkout_credits(
        self,
        *,
        customer_id: str,
        user_id: str,
        pack: CreditPack,
        urls: ReturnUrls,
        order_ref: str,
        key: str,
    ) -> Json:
        self.journal.add("stripe.checkout_credits")
        metadata = purchase_metadata(user_id, pack, order_ref)
        return self._idempotent(
            key,
            lambda: self._session(
                "payment",
                customer_id,
                metadata,
                amount_total=pack.price_cents,
                currency=pack.currency,
            ),
        )

    async def checkout_subscription(
        self,
        *,
        customer_id: str,
        user_id: str,
        plan_id: str,
        price_id: str,
        urls: ReturnUrls,
        order_ref: str,
        key: str,
    ) -> Json:
        self.journal.add("stripe.checkout_subscription")
        metadata = plan_metadata(user_id, plan_id, order_ref)
        return self._idempotent(
            key, lambda: self._session("subscription", customer_id, metadata, price=price_id)
        )

    async def charge_saved_method(
        self,
        *,
        customer_id: str,
        user_id: str,
        pack: CreditPack,
        payment_method_id: str,
        order_ref: str,
        key: str,
    ) -> Json:
        self.journal.add("stripe.charge_saved_method")
        status = {
            DECLINED_CARD: "requires_payment_method",
            AUTHENTICATED_CARD: "requires_action",
        }.get(payment_method_id, "succeeded")
        metadata = direct_purchase_metadata(user_id, pack, order_ref)
        intent = self._idempotent(
            key,
            lambda: self._intent(customer_id, pack.price_cents, pack.currency, metadata, status),
        )
        if status == "requires_payment_method":
            raise CardDeclined("The payment was declined: Your card was declined.", intent)
        return intent

    async def checkout_setup(
        self, *, customer_id: str, user_id: str, urls: ReturnUrls, key: str
    ) -> Json:
        self.journal.add("stripe.checkout_setup")
        return self._idempotent(
            key, lambda: self._session("setup", customer_id, {META_USER: user_id})
        )

    async def retrieve_setup_checkout(self, session_id: str) -> Json:
        session = copy.deepcopy(self._get(session_id, "checkout.session"))
        if session.get("setup_intent"):
            session["setup_intent"] = copy.deepcopy(self.objects[session["setup_intent"]])
        return session

    def save_card(self, session_id: str, card: str = "pm_card_visa") -> Json:
        """The buyer saves `card` on a setup-mode Checkout page; the completed session."""
        session = self._get(session_id, "checkout.session")
        seti = {
            "id": self._new_id("seti"),
            "object": "setup_intent",
            "status": "succeeded",
            "customer": session["customer"],
            "payment_method": card,
        }
        self.objects[seti["id"]] = seti
        session.update(status="complete", setup_intent=seti["id"])
        return copy.deepcopy(session)

    async def charge_off_session(
        self,
        *,
        customer_id: str,
        user_id: str,
        pack: CreditPack,
        payment_method_id: str,
        order_ref: str,
        key: str,
    ) -> Json:
        """Off-session, a card asking for authentication fails like a decline (Stripe's
        authentication_required card error)."""
        self.journal.add("stripe.charge_off_session")
        code = {DECLINED_CARD: "card_declined", AUTHENTICATED_CARD: "authentication_required"}
        failure = code.get(payment_method_id)
        metadata = direct_purchase_metadata(user_id, pack, order_ref)
        status = "requires_payment_method" if failure else "succeeded"
        intent = self._idempotent(
            key,
            lambda: {
                **self._intent(customer_id, pack.price_cents, pack.currency, metadata, status),
                **({"last_payment_error": {"code": failure}} if failure else {}),
            },
        )
        if failure:
            raise CardDeclined("The payment was declined", intent)
        return intent

    def _intent(
        self, customer_id: str, cents: int, currency: str, metadata: dict[str, str], status: str
    ) -> Json:
        intent_id = self._new_id("pi")
        charge_id = self._new_id("ch")
        self.objects[charge_id] = {
            "id": charge_id,
            "object": "charge",
            "payment_intent": intent_id,
            "amount_refunded": 0,
        }
        return {
            "id": intent_id,
            "object": "payment_intent",
            "status": status,
            "amount": cents,
            "amount_received": cents if status == "succeeded" else 0,
            "currency": currency,
            "customer": customer_id,
            "metadata": metadata,
            "client_secret": f"{intent_id}_secret",
            "latest_charge": charge_id,
        }

    async def retrieve_checkout(self, session_id: str) -> Json:
        return copy.deepcopy(self._get(session_id, "checkout.session"))

    async def retrieve_intent(self, intent_id: str) -> Json:
        return copy.deepcopy(self._get(intent_id, "payment_intent"))

    async def retrieve_intent_with_charge(self, intent_id: str) -> Json:
        intent = copy.deepcopy(self._get(intent_id, "payment_intent"))
        intent["latest_charge"] = copy.deepcopy(self.objects[intent["latest_charge"]])
        return intent

    async def retrieve_charge(self, charge_id: str) -> Json:
        return copy.deepcopy(self._get(charge_id, "charge"))

    async def list_disputes(self, intent_id: str) -> list[Json]:
        return copy.deepcopy(self.disputes.get(intent_id, []))

    async def list_open_checkouts(self, customer_id: str) -> list[Json]:
        return [
            copy.deepcopy(o)
            for o in reversed(self.objects.values())
            if o["object"] == "checkout.session"
            and o["customer"] == customer_id
            and o["status"] == "open"
        ]

    async def expire_checkout(self, session_id: str, *, key: str) -> bool:
        self.journal.add("stripe.expire_checkout")
        session = self._get(session_id, "checkout.session")
        if session["status"] != "open":
            return False
        session["status"] = "expired"
        return True

    async def list_subscriptions(self, customer_id: str) -> list[Json]:
        return [
            await self.retrieve_subscription(o["id"])
            for o in self.objects.values()
            if o["object"] == "subscription"
            and o["customer"] == customer_id
            and o["status"] != "canceled"
        ]

    async def retrieve_subscription(self, subscription_id: str) -> Json:
        sub = copy.deepcopy(self._get(subscription_id, "subscription"))
        sub["latest_invoice"] = self._invoice(sub)
        return sub

    async def retrieve_invoice(self, invoice_id: str) -> Json:
        return copy.deepcopy(self._get(invoice_id, "invoice"))

    async def cancel_subscription(self, subscription_id: str, *, key: str) -> Json:
        self.journal.add("stripe.cancel_subscription")
        sub = self._get(subscription_id, "subscription")
        if sub["status"] == "canceled":
            raise StripeRefusedRequest("already canceled")
        sub["status"] = "canceled"
        return await self.retrieve_subscription(subscription_id)

    async def refund(self, intent_id: str, *, reason: str, key: str) -> bool:
        self.journal.add("stripe.refund")
        intent = self._get(intent_id, "payment_intent")
        charge = self.objects[intent["latest_charge"]]
        if charge["amount_refunded"] >= intent["amount_received"]:
            return False
        charge["amount_refunded"] = intent["amount_received"]
        return True

    async def change_subscription_price(
        self, *, subscription_id: str, item_id: str, price_id: str, key: str
    ) -> Json:
        self.journal.add("stripe.change_subscription_price")
        sub = self._get(subscription_id, "subscription")
        sub["items"]["data"][0]["price"]["id"] = price_id
        return await self.retrieve_subscription(subscription_id)

    async def set_cancel_at_period_end(
        self, *, subscription_id: str, cancel: bool, key: str
    ) -> Json:
        self.journal.add("stripe.set_cancel_at_period_end")
        self._get(subscription_id, "subscription")["cancel_at_period_end"] = cancel
        return await self.retrieve_subscription(subscription_id)

    # --- the buyer and Stripe, for tests ---

    def pay_checkout(self, session_id: str) -> Json:
        """The buyer pays: the session completes with a PaymentIntent behind it."""
        session = self._get(session_id, "checkout.session")
        if session["mode"] == "payment":
            meta = {**session["metadata"], META_PURCHASE: "checkout"}
            intent = self._intent(
                session["customer"], session["amount_total"], session["currency"], meta, "succeeded"
            )
            self.objects[intent["id"]] = intent
            session["payment_intent"] = intent["id"]
        session["status"], session["payment_status"] = "complete", "paid"
        return copy.deepcopy(session)

    def refund_part(self, intent_id: str, cents: int) -> Json:
        """Money returned through Stripe's dashboard; returns the charge (a charge.refunded
        event's object)."""
        charge = self.objects[self._get(intent_id, "payment_intent")["latest_charge"]]
        charge["amount_refunded"] += cents
        return copy.deepcopy(charge)

    def dispute(self, intent_id: str, cents: int, status: str = "needs_response") -> Json:
        dispute = {
            "id": self._new_id("dp"),
            "object": "dispute",
            "payment_intent": intent_id,
            "charge": self._get(intent_id, "payment_intent")["latest_charge"],
            "amount": cents,
            "status": status,
            "created": int(time.time()) + len(self.disputes.get(intent_id, [])),
        }
        self.disputes.setdefault(intent_id, []).append(dispute)
        return copy.deepcopy(dispute)

    def subscribe(
        self,
        customer_id: str,
        *,
        plan_id: str,
        price_id: str,
        price_cents: int,
        paid: bool = True,
        status: str = "active",
        created: int | None = None,
    ) -> Json:
        """A subscription Stripe holds for the customer, with its latest invoice (paid or open)."""
        now = int(time.time())
        sub_id, invoice_id = self._new_id("sub"), self._new_id("in")
        intent = self._intent(customer_id, price_cents, "usd", {}, "succeeded")
        self.objects[intent["id"]] = intent
        self.objects[invoice_id] = {
            "id": invoice_id,
            "object": "invoice",
            "customer": customer_id,
            "subscription": sub_id,
            "status": "paid" if paid else "open",
            "amount_paid": price_cents if paid else 0,
            "amount_due": price_cents,
            "currency": "usd",
            "payment_intent": intent["id"] if paid else None,
        }
        self.objects[sub_id] = {
            "id": sub_id,
            "object": "subscription",
            "customer": customer_id,
            "status": status,
            "cancel_at_period_end": False,
            "created": created or now,
            "metadata": {META_PLAN: plan_id},
            "items": {
                "data": [
                    {
                        "id": self._new_id("si"),
                        "price": {"id": price_id, "unit_amount": price_cents, "currency": "usd"},
                        "current_period_start": now,
                        "current_period_end": now + MONTH,
                    }
                ]
            },
            "latest_invoice": invoice_id,
        }
        return copy.deepcopy(self.objects[sub_id])

    def event(self, event_type: str, obj: Json) -> Json:
        return {
            "id": self._new_id("evt"),
            "object": "event",
            "type": event_type,
            "created": int(time.time()),
            "data": {"object": copy.deepcopy(obj)},
        }
