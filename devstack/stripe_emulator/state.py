"""What the emulator holds (Stripe's objects by id, the requests it was sent, the events it
would send) and the events themselves."""

from __future__ import annotations

import copy
import secrets
import threading
import time

from devstack.stripe_emulator.wire import (
    API_VERSION,
    PRICE_ENTERPRISE,
    PRICE_PRO,
    SECRET_KEY,
    WEBHOOK_SECRET,
    Json,
    Recorded,
    not_found,
)


class EmulatorState:
    """The objects by id, the requests received, and the events queued for delivery."""

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

    @staticmethod
    def _new_id(prefix: str) -> str:
        return f"{prefix}_{secrets.token_hex(8)}"

    @staticmethod
    def _public(obj: Json) -> Json:
        """What Stripe shows of an object: its fields without the emulator's own (`_`-prefixed)."""
        return {k: copy.deepcopy(v) for k, v in obj.items() if not k.startswith("_")}

    @classmethod
    def _get(cls, store: dict[str, Json], kind: str, object_id: str) -> Json:
        if object_id not in store:
            raise not_found(kind, object_id)
        return cls._public(store[object_id])

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
