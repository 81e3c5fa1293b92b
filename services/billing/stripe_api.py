"""Stripe through the official library: an async StripeClient (httpx, never blocking the event loop)
whose API base is configurable (STRIPE_API_BASE; tests and the dev stack point it at
devstack/stripe_emulator/), every write carrying an Idempotency-Key, answers returned as plain
dicts (read by stripe_objects), and Stripe's errors turned into domain errors. Webhook signatures
are verified here too."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

import stripe
from stripe.params import (
    CustomerCreateParams,
    DisputeListParams,
    InvoiceRetrieveParams,
    PaymentIntentCreateParams,
    PaymentIntentRetrieveParams,
    RefundCreateParams,
    SubscriptionListParams,
    SubscriptionRetrieveParams,
    SubscriptionUpdateParams,
)
from stripe.params.checkout import (
    SessionCreateParams,
    SessionListParams,
    SessionRetrieveParams,
)

from services.billing.domain import CreditPack
from services.billing.stripe_objects import (
    META_CREDITS,
    META_ORDER,
    META_PACK,
    META_PLAN,
    META_PURCHASE,
    META_USER,
)
from services.kit.errors import InvalidInput, NotFound, Unavailable

log = logging.getLogger("studiox.billing.stripe")

WEBHOOK_TOLERANCE_SECONDS = 300
TIMEOUT_SECONDS = 20.0
NETWORK_RETRIES = 2
UNAVAILABLE = "Payments are temporarily unavailable"


class CardDeclined(InvalidInput):
    """Stripe refused the payment method; `intent` is the PaymentIntent it left behind, if any."""

    def __init__(self, message: str, intent: dict[str, Any] | None) -> None:
        super().__init__(message)
        self.intent = intent


class StripeObjectNotFound(NotFound):
    pass


class StripeRefusedRequest(Unavailable):
    """Stripe refused a request as invalid in the object's current state (e.g. expiring a session
    that was just paid, refunding what is refunded already). Callers that expect it catch it."""


@dataclass(frozen=True)
class ReturnUrls:
    success: str
    cancel: str


def verify_event(payload: bytes, signature: str | None, secret: str) -> dict[str, Any]:
    """The event, if `signature` (the Stripe-Signature header) is Stripe's signature of exactly
    `payload` with `secret`, made less than 5 minutes ago; InvalidInput otherwise."""
    try:
        event = stripe.Webhook.construct_event(
            payload, signature, secret, tolerance=WEBHOOK_TOLERANCE_SECONDS
        )
    except stripe.SignatureVerificationError as err:
        log.warning("webhook refused: %s", err.user_message)
        raise InvalidInput("Invalid Stripe signature") from None
    except (ValueError, TypeError, AttributeError, KeyError):
        # Signed but not a JSON object (json and utf-8 decoding errors are ValueErrors).
        raise InvalidInput("Invalid Stripe event payload") from None
    # The library refuses only old timestamps; a signature from the future is refused as well.
    signed_at = _signed_at(signature or "")
    if signed_at is None or signed_at > time.time() + WEBHOOK_TOLERANCE_SECONDS:
        log.warning("webhook refused: signature timestamp %s is in the future", signed_at)
        raise InvalidInput("Invalid Stripe signature")
    data: dict[str, Any] = event.to_dict()
    return data


def _signed_at(header: str) -> int | None:
    """The header's timestamp (`t=`), read as the library reads it: the first one."""
    for item in header.split(","):
        key, _, value = item.partition("=")
        if key.strip() == "t":
            return int(value) if value.isdigit() and len(value) < 20 else None
    return None


class StripeApi:
    def __init__(self, secret_key: str, api_base: str | None = None) -> None:
        self._http = stripe.HTTPXClient(timeout=TIMEOUT_SECONDS)
        self._client = stripe.StripeClient(
            secret_key,
            base_addresses={"api": api_base.rstrip("/")} if api_base else None,
            http_client=self._http,
            max_network_retries=NETWORK_RETRIES,
        )

    async def close(self) -> None:
        await self._http.close_async()  # type: ignore[no-untyped-call]

    async def create_customer(self, *, user_id: str, email: str | None, key: str) -> str:
        params: CustomerCreateParams = {"metadata": {META_USER: user_id}}
        if email:
            params["email"] = email
        customer = await _call(
            self._client.v1.customers.create_async(params, {"idempotency_key": key})
        )
        return str(customer["id"])

    async def checkout_credits(
        self,
        *,
        customer_id: str,
        user_id: str,
        pack: CreditPack,
        urls: ReturnUrls,
        order_ref: str,
        key: str,
    ) -> dict[str, Any]:
        metadata = purchase_metadata(user_id, pack, order_ref)
        params: SessionCreateParams = {
            "mode": "payment",
            "customer": customer_id,
            "client_reference_id": user_id,
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": pack.currency,
                        "unit_amount": pack.price_cents,
                        "product_data": {"name": f"StudioX {pack.name}"},
                    },
                }
            ],
            "metadata": metadata,
            "payment_intent_data": {"metadata": {**metadata, META_PURCHASE: "checkout"}},
            "success_url": urls.success,
            "cancel_url": urls.cancel,
        }
        return await _call(
            self._client.v1.checkout.sessions.create_async(params, {"idempotency_key": key})
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
    ) -> dict[str, Any]:
        metadata = plan_metadata(user_id, plan_id, order_ref)
        params: SessionCreateParams = {
            "mode": "subscription",
            "customer": customer_id,
            "client_reference_id": user_id,
            "line_items": [{"price": price_id, "quantity": 1}],
            "metadata": metadata,
            "subscription_data": {"metadata": metadata},
            "success_url": urls.success,
            "cancel_url": urls.cancel,
        }
        return await _call(
            self._client.v1.checkout.sessions.create_async(params, {"idempotency_key": key})
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
    ) -> dict[str, Any]:
        params = _pack_intent(
            customer_id, user_id, pack, payment_method_id, order_ref, f"StudioX {pack.name}"
        )
        params["automatic_payment_methods"] = {"enabled": True, "allow_redirects": "never"}
        return await _call(
            self._client.v1.payment_intents.create_async(params, {"idempotency_key": key})
        )

    async def checkout_setup(
        self, *, customer_id: str, user_id: str, urls: ReturnUrls, key: str
    ) -> dict[str, Any]:
        """A Checkout Session in setup mode: the customer saves a card for off-session payments
        (auto top-up)."""
        params: SessionCreateParams = {
            "mode": "setup",
            "customer": customer_id,
            "client_reference_id": user_id,
            "currency": "usd",
            "metadata": {META_USER: user_id, META_PURCHASE: "auto_top_up"},
            "setup_intent_data": {"metadata": {META_USER: user_id}},
            "success_url": urls.success,
            "cancel_url": urls.cancel,
        }
        return await _call(
            self._client.v1.checkout.sessions.create_async(params, {"idempotency_key": key})
        )

    async def retrieve_setup_checkout(self, session_id: str) -> dict[str, Any]:
        """A setup-mode Checkout Session with its SetupIntent expanded (the saved card)."""
        params: SessionRetrieveParams = {"expand": ["setup_intent"]}
        return await _call(self._client.v1.checkout.sessions.retrieve_async(session_id, params))

    async def charge_off_session(
        self,
        *,
        customer_id: str,
        user_id: str,
        pack: CreditPack,
        payment_method_id: str,
        order_ref: str,
        key: str,
    ) -> dict[str, Any]:
        """An auto top-up: a PaymentIntent confirmed off-session with the saved card. A decline or
        a card asking for authentication is a CardDeclined (Stripe answers both as card errors)."""
        params = _pack_intent(
            customer_id,
            user_id,
            pack,
            payment_method_id,
            order_ref,
            f"StudioX {pack.name} (auto top-up)",
        )
        params["off_session"] = True
        return await _call(
            self._client.v1.payment_intents.create_async(params, {"idempotency_key": key})
        )

    async def retrieve_checkout(self, session_id: str) -> dict[str, Any]:
        return await _call(self._client.v1.checkout.sessions.retrieve_async(session_id))

    async def retrieve_intent(self, intent_id: str) -> dict[str, Any]:
        return await _call(self._client.v1.payment_intents.retrieve_async(intent_id))

    async def retrieve_intent_with_charge(self, intent_id: str) -> dict[str, Any]:
        """The PaymentIntent with its latest Charge expanded (what was refunded of it)."""
        params: PaymentIntentRetrieveParams = {"expand": ["latest_charge"]}
        return await _call(self._client.v1.payment_intents.retrieve_async(intent_id, params))

    async def retrieve_charge(self, charge_id: str) -> dict[str, Any]:
        return await _call(self._client.v1.charges.retrieve_async(charge_id))

    async def list_disputes(self, intent_id: str) -> list[dict[str, Any]]:
        params: DisputeListParams = {"payment_intent": intent_id, "limit": 100}
        return _data(await _call(self._client.v1.disputes.list_async(params)))

    async def list_open_checkouts(self, customer_id: str) -> list[dict[str, Any]]:
        """The customer's open Checkout Sessions (any mode), newest first."""
        params: SessionListParams = {"customer": customer_id, "status": "open", "limit": 100}
        return _data(await _call(self._client.v1.checkout.sessions.list_async(params)))

    async def expire_checkout(self, session_id: str, *, key: str) -> bool:
        """Expire an open session; False when it is no longer open (paid or expired meanwhile)."""
        try:
            await _call(
                self._client.v1.checkout.sessions.expire_async(
                    session_id, options={"idempotency_key": key}
                )
            )
        except StripeRefusedRequest:
            return False
        return True

    async def list_subscriptions(self, customer_id: str) -> list[dict[str, Any]]:
        """The customer's subscriptions that are not canceled, each with its latest invoice."""
        params: SubscriptionListParams = {
            "customer": customer_id,
            "limit": 100,
            "expand": ["data.latest_invoice"],
        }
        return _data(await _call(self._client.v1.subscriptions.list_async(params)))

    async def retrieve_subscription(self, subscription_id: str) -> dict[str, Any]:
        params: SubscriptionRetrieveParams = {"expand": ["latest_invoice"]}
        return await _call(self._client.v1.subscriptions.retrieve_async(subscription_id, params))

    async def retrieve_invoice(self, invoice_id: str) -> dict[str, Any]:
        """The invoice with its payments (how it was paid, for a refund)."""
        params: InvoiceRetrieveParams = {"expand": ["payments"]}
        return await _call(self._client.v1.invoices.retrieve_async(invoice_id, params))

    async def cancel_subscription(self, subscription_id: str, *, key: str) -> dict[str, Any]:
        return await _call(
            self._client.v1.subscriptions.cancel_async(
                subscription_id, options={"idempotency_key": key}
            )
        )

    async def refund(self, intent_id: str, *, reason: str, key: str) -> bool:
        """Refund a PaymentIntent in full; False when it was refunded already."""
        params: RefundCreateParams = {"payment_intent": intent_id, "metadata": {"reason": reason}}
        try:
            await _call(self._client.v1.refunds.create_async(params, {"idempotency_key": key}))
        except StripeRefusedRequest:
            return False
        return True

    async def change_subscription_price(
        self, *, subscription_id: str, item_id: str, price_id: str, key: str
    ) -> dict[str, Any]:
        """Swap the subscription's price, prorated and invoiced now; with pending_if_incomplete
        Stripe applies the change only once that invoice is paid."""
        params: SubscriptionUpdateParams = {
            "items": [{"id": item_id, "price": price_id}],
            "proration_behavior": "always_invoice",
            "payment_behavior": "pending_if_incomplete",
        }
        return await _call(
            self._client.v1.subscriptions.update_async(
                subscription_id, params, {"idempotency_key": key}
            )
        )

    async def set_cancel_at_period_end(
        self, *, subscription_id: str, cancel: bool, key: str
    ) -> dict[str, Any]:
        params: SubscriptionUpdateParams = {"cancel_at_period_end": cancel}
        return await _call(
            self._client.v1.subscriptions.update_async(
                subscription_id, params, {"idempotency_key": key}
            )
        )


def _pack_intent(
    customer_id: str,
    user_id: str,
    pack: CreditPack,
    payment_method_id: str,
    order_ref: str,
    description: str,
) -> PaymentIntentCreateParams:
    """A pack bought with a saved card, confirmed at once; its metadata names our order."""
    return {
        "amount": pack.price_cents,
        "currency": pack.currency,
        "customer": customer_id,
        "payment_method": payment_method_id,
        "confirm": True,
        "description": description,
        "metadata": direct_purchase_metadata(user_id, pack, order_ref),
    }


def purchase_metadata(user_id: str, pack: CreditPack, order_ref: str) -> dict[str, str]:
    """What a credit purchase's Stripe objects carry: the user, the pack and our order. Stripe's
    objects (and the test fake's) are built from these, so both name an order the same way."""
    return {
        META_USER: user_id,
        META_PACK: pack.id,
        META_CREDITS: str(pack.credits),
        META_ORDER: order_ref,
    }


def direct_purchase_metadata(user_id: str, pack: CreditPack, order_ref: str) -> dict[str, str]:
    """A purchase's PaymentIntent confirmed at once with a saved card (no Checkout page)."""
    return {**purchase_metadata(user_id, pack, order_ref), META_PURCHASE: "direct"}


def plan_metadata(user_id: str, plan_id: str, order_ref: str) -> dict[str, str]:
    """What a plan checkout and its subscription carry: the user, the plan and our order."""
    return {META_USER: user_id, META_PLAN: plan_id, META_ORDER: order_ref}


def _data(listed: dict[str, Any]) -> list[dict[str, Any]]:
    data = listed.get("data")
    return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []


async def _call(request: Awaitable[stripe.StripeObject]) -> dict[str, Any]:
    try:
        obj = await request
    except stripe.CardError as err:
        raise CardDeclined(
            f"The payment was declined: {err.user_message or 'card declined'}",
            _error_intent(err),
        ) from None
    except stripe.IdempotencyError:
        raise InvalidInput("Idempotency-Key was already used for a different request") from None
    except stripe.InvalidRequestError as err:
        if err.param and err.param.startswith("payment_method"):
            raise InvalidInput("paymentMethodId is not a usable payment method") from None
        if err.http_status == 404:
            raise StripeObjectNotFound("Stripe object not found") from None
        log.warning("Stripe refused a request: %s", err.user_message)
        raise StripeRefusedRequest(UNAVAILABLE) from None
    except (stripe.AuthenticationError, stripe.PermissionError) as err:
        log.error("Stripe refused the API key: %s", err.user_message)
        raise Unavailable(UNAVAILABLE) from None
    except stripe.StripeError as err:
        log.warning("Stripe unavailable: %r", err)
        raise Unavailable(UNAVAILABLE) from None
    data: dict[str, Any] = obj.to_dict()
    return data


def _error_intent(err: stripe.StripeError) -> dict[str, Any] | None:
    body = err.json_body
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("payment_intent"), dict):
            intent: dict[str, Any] = error["payment_intent"]
            return intent
    return None
