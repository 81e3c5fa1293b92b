"""Service layer of billing's user-facing side: the catalog, credit purchases and the payment
history (plan changes: plan_changes.py). Money is taken first: nothing here grants credits except
the confirmed PaymentIntent path (and a replay finding its purchase paid), which grants only what
Stripe's API reports as succeeded, under the same key as the webhook would.

Every purchase is an order recorded before Stripe is called (services.billing.orders). A request
repeated with its Idempotency-Key finds its order and reports what became of it (open, paid,
expired, ...), never a dead checkout as open."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from services.billing import payment_store, store, stripe_objects
from services.billing.config import BillingConfig
from services.billing.domain import (
    CreditPack,
    Order,
    OrderAction,
    OrderKind,
    Payment,
    PaymentStatus,
    Plan,
    Refused,
    StripePayment,
    checkout_state,
    choose_pack,
    new_order_ref,
    stripe_request_key,
    validate_client_key,
    validate_payment_method,
)
from services.billing.fulfilment import Fulfilment, Ledger
from services.billing.orders import UNEXPECTED, Orders, read
from services.billing.statements import BillingStore, PaymentStore
from services.billing.stripe_api import CardDeclined
from services.kit.context import Identity
from services.kit.db import Database
from services.kit.errors import InvalidInput, NotFound, Unavailable

log = logging.getLogger("studiox.billing")


@dataclass(frozen=True)
class PurchaseStarted:
    credits: int
    status: str
    checkout_url: str = ""
    session_id: str = ""
    payment_intent_id: str = ""
    client_secret: str = ""


class Billing:
    def __init__(
        self,
        db: Database,
        ledger: Ledger,
        fulfilment: Fulfilment,
        orders: Orders,
        config: BillingConfig,
        records: BillingStore = store,
        payment_records: PaymentStore = payment_store,
    ) -> None:
        self._db = db
        self._store = records
        self._payments = payment_records
        self._ledger = ledger
        self._fulfilment = fulfilment
        self._orders = orders
        self._config = config

    # --- catalog ---

    async def catalog(self) -> tuple[list[Plan], list[CreditPack]]:
        async with self._db.autocommit() as conn:
            return await self._store.list_plans(conn), await self._store.list_packs(conn)

    async def plan(self, plan_id: str) -> Plan:
        async with self._db.autocommit() as conn:
            plan = await self._store.get_plan(conn, plan_id.lower())
        if plan is None:
            raise NotFound(f"Unknown plan: {plan_id}")
        return plan

    # --- credit purchases ---

    async def purchase_credits(
        self,
        identity: Identity,
        *,
        pack_id: str,
        credits: int,
        payment_method_id: str,
        client_key: str | None,
    ) -> PurchaseStarted:
        async with self._db.autocommit() as conn:
            packs = await self._store.list_packs(conn)
        pack = choose_pack(packs, pack_id, credits)
        if payment_method_id:
            validate_payment_method(payment_method_id)
        client_key = validate_client_key(client_key)
        stripe = self._orders.stripe()
        user = identity.user_id
        await self._ledger.require_account(user)
        customer = await self._orders.customer(identity)
        order = await self._orders.start(
            Order(
                ref=new_order_ref(),
                request_key=stripe_request_key("purchase", user, client_key),
                user_id=user,
                customer_id=customer,
                kind=OrderKind.CREDITS,
                action=OrderAction.INTENT if payment_method_id else OrderAction.CHECKOUT,
                pack_id=pack.id,
                plan_id=None,
                credits=pack.credits,
                amount_cents=pack.price_cents,
                currency=pack.currency,
            )
        )
        if order.stripe_id is not None:
            return await self._replay_purchase(order)
        if order.action is OrderAction.CHECKOUT:
            session = await stripe.checkout_credits(
                customer_id=customer,
                user_id=user,
                pack=pack,
                urls=self._config.urls,
                order_ref=order.ref,
                key=f"checkout:{order.ref}",
            )
            payment = read(stripe_objects.checkout_payment, session)
            await self._settle(order, payment)
            return _purchase_started(order, payment)
        try:
            intent = await stripe.charge_saved_method(
                customer_id=customer,
                user_id=user,
                pack=pack,
                payment_method_id=payment_method_id,
                order_ref=order.ref,
                key=f"intent:{order.ref}",
            )
        except CardDeclined as declined:
            if declined.intent:
                await self._settle(order, read(stripe_objects.intent_payment, declined.intent))
            raise
        payment = read(stripe_objects.intent_payment, intent)
        # Granted now if Stripe confirmed it; otherwise (e.g. 3-D Secure) by the webhook later.
        await self._settle(order, payment)
        return _purchase_started(order, payment)

    async def _replay_purchase(self, order: Order) -> PurchaseStarted:
        """The same request again: what became of the purchase, as Stripe reports it now (and
        granted, if it is paid and the webhook has not done so yet)."""
        assert order.stripe_id is not None
        payment = await self._orders.retrieve(order.action, order.stripe_id)
        await self._settle(order, payment)
        if payment.action is OrderAction.INTENT and payment.status is PaymentStatus.FAILED:
            raise InvalidInput("The payment was declined")
        return _purchase_started(order, payment)

    async def _settle(self, order: Order, payment: StripePayment) -> None:
        try:
            async with self._db.transaction() as conn:
                await self._fulfilment.settle(conn, order, payment)
        except Refused as refused:
            log.error("Stripe's answer does not match order %s: %s", order.ref, refused)
            raise Unavailable(UNEXPECTED) from None
        except Unavailable as err:
            # The money may be taken: answering an error would invite paying again. The webhook
            # for this payment grants the credits (same key) once the credit service is back.
            log.warning("grant of %s deferred to the webhook: %s", payment.id, err.message)
            async with self._db.transaction() as conn:
                await self._fulfilment.settle(conn, order, payment, grant=False)

    # --- history ---

    async def history(
        self, user_id: str, *, limit: int, before_id: int | None
    ) -> Sequence[Payment]:
        """Up to `limit` of the user's payments before `before_id`, newest first."""
        async with self._db.autocommit() as conn:
            return await self._payments.list_payments(
                conn, user_id, limit=limit, before_id=before_id
            )


def _purchase_started(order: Order, payment: StripePayment) -> PurchaseStarted:
    if payment.action is OrderAction.CHECKOUT:
        state = checkout_state(payment)
        return PurchaseStarted(
            credits=order.credits,
            status=state,
            checkout_url=payment.url if state == "open" else "",
            session_id=payment.id,
        )
    return PurchaseStarted(
        credits=order.credits,
        status=payment.stripe_status,
        payment_intent_id=payment.id,
        client_secret=payment.client_secret,
    )
