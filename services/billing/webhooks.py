"""Stripe webhooks: only Stripe-signed events are trusted, each event id is processed once, and its
record commits in the same transaction as its effect (a failure rolls both back, and Stripe's retry
finds the event unprocessed). Event types billing does not act on are acknowledged and logged."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing import store, stripe_objects
from services.billing.config import BillingConfig
from services.billing.domain import PaymentKind, PaymentStatus
from services.billing.fulfilment import NOT_CONFIGURED, Fulfilment
from services.billing.metrics import WEBHOOK_EVENTS
from services.billing.stripe_api import verify_event
from services.billing.stripe_objects import Event
from services.kit.db import Database
from services.kit.errors import DomainError, NotConfigured

log = logging.getLogger("studiox.billing.webhooks")

Handler = Callable[[AsyncConnection, Event], Awaitable[None]]


class Webhooks:
    def __init__(self, db: Database, fulfilment: Fulfilment, config: BillingConfig) -> None:
        self._db = db
        self._fulfilment = fulfilment
        self._config = config
        self._handlers: dict[str, Handler] = {
            "checkout.session.completed": self._checkout,
            "checkout.session.async_payment_succeeded": self._checkout,
            "checkout.session.async_payment_failed": self._checkout_failed,
            "checkout.session.expired": self._checkout,
            "payment_intent.succeeded": self._intent,
            "payment_intent.processing": self._intent,
            "payment_intent.payment_failed": self._intent,
            "payment_intent.canceled": self._intent,
            "customer.subscription.created": self._subscription,
            "customer.subscription.updated": self._subscription,
            "customer.subscription.deleted": self._subscription,
            "customer.subscription.paused": self._subscription,
            "customer.subscription.resumed": self._subscription,
            "invoice.paid": self._invoice_paid,
            "invoice.payment_failed": self._invoice_failed,
        }

    async def handle(self, payload: bytes, signature: str | None) -> bool:
        """Verify and process one delivery; returns False for an event processed before."""
        if not self._config.webhook_secret:
            raise NotConfigured(NOT_CONFIGURED)
        try:
            event = stripe_objects.parse_event(
                verify_event(payload, signature, self._config.webhook_secret)
            )
        except DomainError:
            WEBHOOK_EVENTS.labels("unknown", "rejected").inc()
            raise
        context = {"event_id": event.id, "event_type": event.type}
        handler = self._handlers.get(event.type)
        try:
            async with self._db.transaction() as conn:
                if not await store.record_event(conn, event.id, event.type, event.created):
                    log.info("stripe event already processed", extra=context)
                    WEBHOOK_EVENTS.labels(event.type, "duplicate").inc()
                    return False
                if handler is not None:
                    await handler(conn, event)
        except Exception:
            WEBHOOK_EVENTS.labels(event.type, "error").inc()
            raise
        if handler is None:
            log.info("stripe event type not handled; acknowledged", extra=context)
            WEBHOOK_EVENTS.labels(event.type, "ignored").inc()
            return True
        log.info("stripe event processed", extra=context)
        WEBHOOK_EVENTS.labels(event.type, "processed").inc()
        return True

    async def _checkout(self, conn: AsyncConnection, event: Event) -> None:
        purchase = stripe_objects.checkout_purchase(event.object)
        if purchase is not None:
            await self._fulfilment.purchase(conn, purchase)
        subscription_id = stripe_objects.checkout_subscription_id(event.object)
        if subscription_id is not None and event.type == "checkout.session.completed":
            await self._fulfilment.sync_subscription(
                conn, stripe_objects.customer_of(event.object), subscription_id
            )

    async def _checkout_failed(self, conn: AsyncConnection, event: Event) -> None:
        purchase = stripe_objects.checkout_purchase(event.object)
        if purchase is not None:
            failed = dataclasses.replace(purchase, status=PaymentStatus.FAILED)
            await self._fulfilment.purchase(conn, failed)

    async def _intent(self, conn: AsyncConnection, event: Event) -> None:
        # Intents behind a Checkout Session are not "direct": their session's events fulfil them,
        # under the session's key, so a payment is granted once whichever path reports it.
        purchase = stripe_objects.intent_purchase(event.object)
        if purchase is not None:
            await self._fulfilment.purchase(conn, purchase)

    async def _subscription(self, conn: AsyncConnection, event: Event) -> None:
        subscription = stripe_objects.subscription(event.object, self._config.price_plans)
        await self._fulfilment.sync_subscription(conn, subscription.customer_id, subscription.id)

    async def _invoice_paid(self, conn: AsyncConnection, event: Event) -> None:
        await self._invoice(conn, event, PaymentStatus.SUCCEEDED)

    async def _invoice_failed(self, conn: AsyncConnection, event: Event) -> None:
        # Recorded; the plan stays (the subscription is past_due, still live) until Stripe gives up
        # and deletes the subscription.
        await self._invoice(conn, event, PaymentStatus.FAILED)

    async def _invoice(self, conn: AsyncConnection, event: Event, status: PaymentStatus) -> None:
        invoice = stripe_objects.invoice(event.object)
        if invoice.subscription_id is None:
            log.info("invoice %s is not for a subscription; ignored", invoice.id)
            return
        synced = await self._fulfilment.sync_subscription(
            conn, invoice.customer_id, invoice.subscription_id
        )
        if synced is None:
            return
        user_id, subscription = synced
        await store.save_payment(
            conn,
            user_id=user_id,
            stripe_id=invoice.id,
            kind=PaymentKind.SUBSCRIPTION,
            status=status,
            amount_cents=invoice.amount_cents,
            currency=invoice.currency,
            plan_id=subscription.plan_id,
        )
