"""Service layer of billing's user-facing side: the catalog, credit purchases, plan changes and the
payment history. Money is taken first: nothing here grants credits or changes a plan except the
confirmed PaymentIntent path, which grants only what Stripe reports as succeeded (under the same key
as the webhook would)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from services.billing import store, stripe_objects
from services.billing.config import BillingConfig
from services.billing.domain import (
    FREE_PLAN,
    CreditPack,
    Payment,
    Plan,
    Subscription,
    choose_pack,
    choose_plan,
    customer_key,
    stripe_request_key,
    validate_client_key,
    validate_payment_method,
)
from services.billing.fulfilment import NOT_CONFIGURED, Fulfilment, Ledger
from services.billing.stripe_api import CardDeclined, StripeApi
from services.kit.auth import Identity
from services.kit.db import Database
from services.kit.errors import (
    DomainError,
    ErrorKind,
    InvalidState,
    NotConfigured,
    NotFound,
    Unavailable,
)

log = logging.getLogger("studiox.billing")


@dataclass(frozen=True)
class PurchaseStarted:
    credits: int
    status: str
    checkout_url: str = ""
    session_id: str = ""
    payment_intent_id: str = ""
    client_secret: str = ""


@dataclass(frozen=True)
class PlanChangeStarted:
    plan_id: str
    status: str
    message: str
    checkout_url: str = ""
    session_id: str = ""
    effective_at: datetime | None = None


class Billing:
    def __init__(
        self,
        db: Database,
        ledger: Ledger,
        fulfilment: Fulfilment,
        stripe: StripeApi | None,
        config: BillingConfig,
    ) -> None:
        self._db = db
        self._ledger = ledger
        self._fulfilment = fulfilment
        self._stripe = stripe
        self._config = config

    # --- catalog ---

    async def catalog(self) -> tuple[list[Plan], list[CreditPack]]:
        async with self._db.autocommit() as conn:
            return await store.list_plans(conn), await store.list_packs(conn)

    async def plan(self, plan_id: str) -> Plan:
        async with self._db.autocommit() as conn:
            plan = await store.get_plan(conn, plan_id.lower())
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
            packs = await store.list_packs(conn)
        pack = choose_pack(packs, pack_id, credits)
        if payment_method_id:
            validate_payment_method(payment_method_id)
        client_key = validate_client_key(client_key)
        stripe = self._require_stripe()
        user = identity.user_id
        await self._ledger.require_account(user)
        customer = await self._customer(stripe, identity)
        if not payment_method_id:
            session = await stripe.checkout_credits(
                customer_id=customer,
                user_id=user,
                pack=pack,
                urls=self._config.urls,
                key=stripe_request_key("checkout", user, client_key),
            )
            purchase = stripe_objects.checkout_purchase(session)
            if purchase is None:
                raise Unavailable("Stripe answered with an unexpected checkout session")
            async with self._db.transaction() as conn:
                await self._fulfilment.purchase(conn, purchase, user)
            return PurchaseStarted(
                credits=pack.credits,
                status=str(session.get("status") or "open"),
                checkout_url=str(session.get("url") or ""),
                session_id=purchase.stripe_id,
            )
        try:
            intent = await stripe.charge_saved_method(
                customer_id=customer,
                user_id=user,
                pack=pack,
                payment_method_id=payment_method_id,
                key=stripe_request_key("intent", user, client_key),
            )
        except CardDeclined as declined:
            failed = stripe_objects.intent_purchase(declined.intent) if declined.intent else None
            if failed is not None:
                async with self._db.transaction() as conn:
                    await self._fulfilment.purchase(conn, failed, user)
            raise
        purchase = stripe_objects.intent_purchase(intent)
        if purchase is None:
            raise Unavailable("Stripe answered with an unexpected payment intent")
        # Granted now if Stripe confirmed it; otherwise (e.g. 3-D Secure) by the webhook later.
        try:
            async with self._db.transaction() as conn:
                await self._fulfilment.purchase(conn, purchase, user)
        except DomainError as err:
            if err.kind is not ErrorKind.UNAVAILABLE:
                raise
            # The money is taken: answering an error would invite paying again. The webhook for
            # this intent grants the credits (same key) once the credit service is back.
            log.warning("grant of %s deferred to the webhook: %s", purchase.stripe_id, err.message)
            async with self._db.transaction() as conn:
                await self._fulfilment.purchase(conn, purchase, user, grant=False)
        return PurchaseStarted(
            credits=pack.credits,
            status=str(intent.get("status") or ""),
            payment_intent_id=purchase.stripe_id,
            client_secret=str(intent.get("client_secret") or ""),
        )

    # --- plans ---

    async def change_plan(
        self, identity: Identity, plan_name: str, client_key: str | None
    ) -> PlanChangeStarted:
        async with self._db.autocommit() as conn:
            plans = await store.list_plans(conn)
        target = choose_plan(plans, plan_name)
        client_key = validate_client_key(client_key)
        stripe = self._require_stripe()
        user = identity.user_id
        await self._ledger.require_account(user)
        current = await self._live_subscription(stripe, user)

        if target.id == FREE_PLAN:
            if current is None:
                raise InvalidState("You are already on the Free plan")
            if not current.cancel_at_period_end:
                current = stripe_objects.subscription(
                    await stripe.set_cancel_at_period_end(
                        subscription_id=current.id,
                        cancel=True,
                        key=stripe_request_key("cancel", user, client_key),
                    ),
                    self._config.price_plans,
                )
            return PlanChangeStarted(
                plan_id=FREE_PLAN,
                status="cancel_at_period_end",
                message="Your plan changes to Free at the end of the current billing period",
                effective_at=current.period_end,
            )

        price = self._config.plan_prices.get(target.id)
        if price is None:
            raise NotConfigured(f"The {target.name} plan cannot be bought: no Stripe price is set")
        if current is None:
            customer = await self._customer(stripe, identity)
            session = await stripe.checkout_subscription(
                customer_id=customer,
                user_id=user,
                plan_id=target.id,
                price_id=price,
                urls=self._config.urls,
                key=stripe_request_key("subscribe", user, client_key),
            )
            return PlanChangeStarted(
                plan_id=target.id,
                status="checkout",
                message=f"Complete the checkout to switch to the {target.name} plan",
                checkout_url=str(session.get("url") or ""),
                session_id=str(session.get("id") or ""),
            )
        if current.cancel_at_period_end:
            await stripe.set_cancel_at_period_end(
                subscription_id=current.id,
                cancel=False,
                key=stripe_request_key("resume", user, client_key),
            )
            if current.plan_id == target.id:
                return PlanChangeStarted(
                    plan_id=target.id,
                    status="resumed",
                    message=f"You stay on the {target.name} plan",
                    effective_at=current.period_end,
                )
        if current.plan_id == target.id:
            raise InvalidState(f"You are already on the {target.name} plan")
        if current.item_id is None:
            raise Unavailable("Stripe answered with an unexpected subscription")
        await stripe.change_subscription_price(
            subscription_id=current.id,
            item_id=current.item_id,
            price_id=price,
            key=stripe_request_key("change", user, client_key),
        )
        return PlanChangeStarted(
            plan_id=target.id,
            status="pending",
            message=f"Your plan changes to {target.name} once Stripe confirms the payment",
        )

    # --- history ---

    async def history(
        self, user_id: str, *, limit: int, before_id: int | None
    ) -> Sequence[Payment]:
        """Up to `limit` of the user's payments before `before_id`, newest first."""
        async with self._db.autocommit() as conn:
            return await store.list_payments(conn, user_id, limit=limit, before_id=before_id)

    # --- helpers ---

    def _require_stripe(self) -> StripeApi:
        if self._stripe is None:
            raise NotConfigured(NOT_CONFIGURED)
        return self._stripe

    async def _customer(self, stripe: StripeApi, identity: Identity) -> str:
        """The user's Stripe customer, created once: the creation's Idempotency-Key is the user's,
        so concurrent first purchases get the same customer from Stripe, recorded once."""
        async with self._db.autocommit() as conn:
            existing = await store.customer_id(conn, identity.user_id)
        if existing is not None:
            return existing
        created = await stripe.create_customer(
            user_id=identity.user_id, email=identity.email, key=customer_key(identity.user_id)
        )
        async with self._db.autocommit() as conn:
            return await store.add_customer(conn, identity.user_id, created)

    async def _live_subscription(self, stripe: StripeApi, user_id: str) -> Subscription | None:
        """The user's live subscription as Stripe has it now (not as the webhooks told us so far:
        a subscription whose events are still on their way must not lead to a second one)."""
        async with self._db.autocommit() as conn:
            customer = await store.customer_id(conn, user_id)
            plans = await store.list_plans(conn)
        if customer is None:
            return None
        listed = [
            stripe_objects.subscription(raw, self._config.price_plans)
            for raw in await stripe.list_subscriptions(customer)
        ]
        live = [s for s in listed if s.live]
        rank = {p.id: i for i, p in enumerate(plans)}
        return max(live, key=lambda s: rank.get(s.plan_id or "", -1), default=None)
