"""Stripe webhooks: only Stripe-signed events (signed within ±5 minutes) are trusted, each event id
is processed once, and its record commits in the same transaction as its effect (a failure rolls
both back, and Stripe's retry finds the event unprocessed).

An event is a trigger, never the truth: its objects are checked against our records and read back
from Stripe (services.billing.fulfilment). One that does not match, or carries values no Stripe
object has, is `refused`: acknowledged (so Stripe stops retrying), logged, counted and recorded,
with no effect. Event types billing does not act on are acknowledged as `ignored`."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from enum import Enum

from psycopg import DataError

from services.billing import store, stripe_objects
from services.billing.config import BillingConfig
from services.billing.domain import OrderAction, Refused
from services.billing.fulfilment import NOT_CONFIGURED, Fulfilment
from services.billing.metrics import WEBHOOK_EVENTS
from services.billing.statements import BillingStore
from services.billing.stripe_api import verify_event
from services.billing.stripe_objects import Event
from services.kit.db import Database
from services.kit.errors import DomainError, NotConfigured
from services.kit.sql import Connection

log = logging.getLogger("studiox.billing.webhooks")


class Outcome(Enum):
    PROCESSED = "processed"
    IGNORED = "ignored"
    REFUSED = "refused"


Handler = Callable[[Connection, Event], Awaitable[Outcome]]
SavedCard = Callable[[Connection, str], Awaitable[bool]]


class Webhooks:
    def __init__(
        self,
        db: Database,
        fulfilment: Fulfilment,
        config: BillingConfig,
        records: BillingStore = store,
        saved_card: SavedCard | None = None,
    ) -> None:
        self._db = db
        self._store = records
        self._fulfilment = fulfilment
        self._config = config
        # Auto top-up's card saving (services.billing.autotopup), for setup-mode Checkouts.
        self._saved_card = saved_card
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
            "invoice.payment_succeeded": self._invoice_paid,
            "invoice.payment_failed": self._invoice_failed,
            # Money going back: each is a trigger to read the payment's refunds and disputes.
            "charge.refunded": self._reversal,
            "charge.refund.updated": self._reversal,
            "charge.dispute.created": self._reversal,
            "charge.dispute.updated": self._reversal,
            "charge.dispute.closed": self._reversal,
            "charge.dispute.funds_withdrawn": self._reversal,
            "charge.dispute.funds_reinstated": self._reversal,
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
                if not await self._store.record_event(conn, event.id, event.type, event.created):
                    log.info("stripe event already processed", extra=context)
                    WEBHOOK_EVENTS.labels(event.type, "duplicate").inc()
                    return False
                outcome = await self._run(conn, handler, event) if handler else Outcome.IGNORED
                if outcome is not Outcome.PROCESSED:
                    await self._store.record_outcome(conn, event.id, outcome.value)
        except Exception:
            WEBHOOK_EVENTS.labels(event.type, "error").inc()
            raise
        log.info("stripe event %s", outcome.value, extra=context)
        WEBHOOK_EVENTS.labels(event.type, outcome.value).inc()
        return True

    @staticmethod
    async def _run(conn: Connection, handler: Handler, event: Event) -> Outcome:
        """The handler's effects, all or nothing: a refusal rolls back whatever it wrote."""
        context = {"event_id": event.id, "event_type": event.type}
        try:
            async with conn.begin_nested():
                return await handler(conn, event)
        except Refused as refused:
            log.warning("stripe event refused: %s", refused, extra=context)
        except DataError as err:
            # Out-of-range data the readers let through: still the sender's input, not a fault.
            log.error("stripe event refused by the database: %s", err, extra=context)
        return Outcome.REFUSED

    async def _checkout(self, conn: Connection, event: Event) -> Outcome:
        if event.object.get("mode") == "setup":
            return await self._setup(conn, event)
        session = stripe_objects.checkout_payment(event.object)
        if session.mode == "payment":
            await self._fulfilment.confirm_purchase(conn, session)
            return Outcome.PROCESSED
        subscription_id = stripe_objects.checkout_subscription_id(event.object)
        if subscription_id is not None and event.type == "checkout.session.completed":
            await self._fulfilment.sync_subscription(conn, session.customer_id, subscription_id)
            return Outcome.PROCESSED
        return Outcome.IGNORED

    async def _setup(self, conn: Connection, event: Event) -> Outcome:
        session_id = event.object.get("id")
        if (
            event.type != "checkout.session.completed"
            or self._saved_card is None
            or not isinstance(session_id, str)
        ):
            return Outcome.IGNORED
        if not await self._saved_card(conn, session_id):
            raise Refused(f"setup session {session_id[:40]} is not one of ours")
        return Outcome.PROCESSED

    async def _checkout_failed(self, conn: Connection, event: Event) -> Outcome:
        session = stripe_objects.checkout_payment(event.object)
        if session.mode != "payment":
            return Outcome.IGNORED
        await self._fulfilment.confirm_purchase(conn, session, failed=True)
        return Outcome.PROCESSED

    async def _intent(self, conn: Connection, event: Event) -> Outcome:
        # Intents behind a Checkout Session are fulfilled by their session's events, under the
        # session's key, so a payment is granted once whichever path reports it; intents without
        # our metadata (e.g. an invoice's) are not purchases.
        if stripe_objects.purchase_kind(event.object) != "direct":
            return Outcome.IGNORED
        intent = stripe_objects.intent_payment(event.object)
        assert intent.action is OrderAction.INTENT
        await self._fulfilment.confirm_purchase(conn, intent)
        return Outcome.PROCESSED

    async def _reversal(self, conn: Connection, event: Event) -> Outcome:
        intent_id, charge_id = stripe_objects.reversal_subject(event.object)
        if await self._fulfilment.reverse(conn, intent_id, charge_id):
            return Outcome.PROCESSED
        return Outcome.IGNORED

    async def _subscription(self, conn: Connection, event: Event) -> Outcome:
        subscription = stripe_objects.subscription(event.object, self._config.price_plans)
        await self._fulfilment.sync_subscription(conn, subscription.customer_id, subscription.id)
        return Outcome.PROCESSED

    async def _invoice_paid(self, conn: Connection, event: Event) -> Outcome:
        return await self._invoice(conn, event, failed=False)

    async def _invoice_failed(self, conn: Connection, event: Event) -> Outcome:
        # Recorded; the plan stays (the subscription is past_due, still live, its new period without
        # allowance) until Stripe is paid or gives up and deletes the subscription.
        return await self._invoice(conn, event, failed=True)

    async def _invoice(self, conn: Connection, event: Event, *, failed: bool) -> Outcome:
        invoice = stripe_objects.invoice(event.object)
        if invoice.subscription_id is None:
            log.info("invoice %s is not for a subscription; ignored", invoice.id)
            return Outcome.IGNORED
        await self._fulfilment.record_invoice(conn, invoice, failed=failed)
        return Outcome.PROCESSED
