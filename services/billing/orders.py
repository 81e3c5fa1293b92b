"""Orders at Stripe, shared by the purchase and plan-change use cases: the user's Stripe customer
(created once), each order recorded before Stripe is called (services.billing.domain.Order) and
then bound to the Stripe object it started, and Stripe's answers read back. An answer we cannot
read is Stripe's fault, not the caller's: it becomes Unavailable."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from services.billing import store
from services.billing.domain import (
    Order,
    OrderAction,
    Refused,
    StripePayment,
    customer_key,
)
from services.billing.fulfilment import NOT_CONFIGURED, Fulfilment
from services.billing.statements import BillingStore
from services.billing.stripe_api import StripeApi
from services.kit.context import Identity
from services.kit.db import Database
from services.kit.errors import InvalidInput, NotConfigured, Unavailable

log = logging.getLogger("studiox.billing")

KEY_REUSED = "Idempotency-Key was already used for a different request"
UNEXPECTED = "Stripe answered with an unexpected object"

T = TypeVar("T")


class Orders:
    def __init__(
        self,
        db: Database,
        fulfilment: Fulfilment,
        stripe: StripeApi | None,
        records: BillingStore = store,
    ) -> None:
        self._db = db
        self._fulfilment = fulfilment
        self._stripe = stripe
        self._store = records

    def stripe(self) -> StripeApi:
        """Stripe, or NotConfigured when no key is set."""
        if self._stripe is None:
            raise NotConfigured(NOT_CONFIGURED)
        return self._stripe

    async def customer(self, identity: Identity) -> str:
        """The user's Stripe customer, created once: the creation's Idempotency-Key is the user's,
        so concurrent first purchases get the same customer from Stripe, recorded once. Also the
        customer of other use cases (auto top-up)."""
        stripe = self.stripe()
        async with self._db.autocommit() as conn:
            existing = await self._store.customer_id(conn, identity.user_id)
        if existing is not None:
            return existing
        created = await stripe.create_customer(
            user_id=identity.user_id, email=identity.email, key=customer_key(identity.user_id)
        )
        async with self._db.autocommit() as conn:
            return await self._store.add_customer(conn, identity.user_id, created)

    async def start(self, order: Order) -> Order:
        """`order` recorded, or the one its request key already names (a replay of the same
        request; another request under that key is refused)."""
        async with self._db.autocommit() as conn:
            recorded = await self._store.start_order(conn, order)
        if recorded.ref != order.ref and not recorded.same_request(order):
            raise InvalidInput(KEY_REUSED)
        return recorded

    async def bind(self, order: Order, stripe_id: str, action: OrderAction | None = None) -> None:
        async with self._db.autocommit() as conn:
            await self._store.bind_order(conn, order.ref, stripe_id, action or order.action)

    async def retrieve(self, action: OrderAction, stripe_id: str) -> StripePayment:
        try:
            return await self._fulfilment.retrieve_payment(action, stripe_id)
        except Refused as refused:
            log.error("order's Stripe object unreadable: %s", refused)
            raise Unavailable(UNEXPECTED) from None


def read(parse: Callable[[Mapping[str, Any]], T], raw: Mapping[str, Any]) -> T:
    """An object from Stripe's own API answer; one we cannot read is Stripe's fault, not the
    caller's."""
    try:
        return parse(raw)
    except Refused as refused:
        log.error("unreadable Stripe answer: %s", refused)
        raise Unavailable(UNEXPECTED) from None
