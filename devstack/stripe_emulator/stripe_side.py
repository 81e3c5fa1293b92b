"""Stripe's side: what happens outside our API calls (a customer paying on the Checkout page, a
renewal, the end of a period, a refund or a dispute from the Dashboard), each changing the state
and queueing the events Stripe would send."""

from __future__ import annotations

import copy
import time

from devstack.stripe_emulator.saved_cards import SavedCards
from devstack.stripe_emulator.wire import (
    PM_DECLINED,
    PM_VISA,
    Json,
    not_found,
    plus_month,
)


def _next_period(item: Json) -> None:
    """A renewal, paid or not, moves the subscription item on to its next monthly period."""
    item["current_period_start"] = item["current_period_end"]
    item["current_period_end"] = plus_month(item["current_period_end"])


class StripeSide(SavedCards):
    """What Stripe does without a call from us; each method returns the events it queued."""

    def complete_checkout(self, session_id: str) -> list[Json]:
        """The customer pays on the Checkout page; returns the events Stripe sends."""
        with self._lock:
            session = self.sessions[session_id]
            assert session["status"] == "open", session["status"]
            session["status"] = "complete"
            session["payment_status"] = "paid"
            events: list[Json] = []
            if session["mode"] == "payment":
                intent = self._checkout_intent(session, status="succeeded", pm=PM_VISA)
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
            intent = self._checkout_intent(
                session, status="requires_payment_method", pm=PM_DECLINED
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
            _next_period(item)
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
            _next_period(self._item(sub))
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
