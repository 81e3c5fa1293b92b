"""Saved cards: Checkout in setup mode, and off-session payments with a saved card that
succeed, decline, or need authentication."""

from __future__ import annotations

import copy
import time

from devstack.stripe_emulator.objects import StripeObjects
from devstack.stripe_emulator.wire import (
    Json,
    StripeFailure,
)


class SavedCards(StripeObjects):
    """Cards saved through Checkout in setup mode, and how each behaves when charged."""

    def _create_setup_session(self, params: Json) -> Json:
        if not params.get("success_url"):
            raise StripeFailure(
                400, "invalid_request_error", "Missing success_url", param="success_url"
            )
        customer = self._customer(params)
        return self._open_session(
            params,
            customer,
            mode="setup",
            payment_status="no_payment_required",
            amount_total=None,
            currency=params.get("currency"),
            setup_intent=None,
            _setup_intent_data=params.get("setup_intent_data", {}),
        )

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
