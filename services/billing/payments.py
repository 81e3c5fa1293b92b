"""Service layer of billing's user-facing side: the catalog, credit purchases, plan changes and the
payment history. Money is taken first: nothing here grants credits or changes a plan except the
confirmed PaymentIntent path (and a replay finding its purchase paid), which grants only what
Stripe's API reports as succeeded, under the same key as the webhook would.

Every purchase and plan change is an order recorded before Stripe is called (services.billing.
domain.Order). A request repeated with its Idempotency-Key finds its order and reports what became
of it (open, paid, expired, ...), never a dead checkout as open. A user's plan changes run one at a
time, and a new plan checkout reuses the user's open one for the same plan or expires the others,
so concurrent upgrades open one payable session."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from services.billing import store, stripe_objects
from services.billing.config import BillingConfig
from services.billing.domain import (
    FREE_PLAN,
    CreditPack,
    Order,
    OrderAction,
    OrderKind,
    Payment,
    PaymentStatus,
    Plan,
    Refused,
    StripePayment,
    Subscription,
    checkout_state,
    choose_pack,
    choose_plan,
    customer_key,
    new_order_ref,
    stripe_request_key,
    validate_client_key,
    validate_payment_method,
)
from services.billing.fulfilment import NOT_CONFIGURED, Fulfilment, Ledger
from services.billing.locks import KeyedLocks
from services.billing.statements import BillingStore
from services.billing.stripe_api import CardDeclined, StripeApi
from services.billing.stripe_objects import OpenCheckout
from services.kit.context import Identity
from services.kit.db import Database
from services.kit.errors import (
    DomainError,
    ErrorKind,
    InvalidInput,
    InvalidState,
    NotConfigured,
    NotFound,
    Unavailable,
)

log = logging.getLogger("studiox.billing")

KEY_REUSED = "Idempotency-Key was already used for a different request"
UNEXPECTED = "Stripe answered with an unexpected object"
# An open checkout is handed out again only while the buyer has time to pay it.
REUSE_MIN_REMAINING = timedelta(minutes=10)

T = TypeVar("T")


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
        records: BillingStore = store,
    ) -> None:
        self._db = db
        self._store = records
        self._ledger = ledger
        self._fulfilment = fulfilment
        self._stripe = stripe
        self._config = config
        self._plan_locks = KeyedLocks()

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
        stripe = self._require_stripe()
        user = identity.user_id
        await self._ledger.require_account(user)
        customer = await self._customer(stripe, identity)
        order = await self._start_order(
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
            payment = _read(stripe_objects.checkout_payment, session)
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
                await self._settle(order, _read(stripe_objects.intent_payment, declined.intent))
            raise
        payment = _read(stripe_objects.intent_payment, intent)
        # Granted now if Stripe confirmed it; otherwise (e.g. 3-D Secure) by the webhook later.
        await self._settle(order, payment)
        return _purchase_started(order, payment)

    async def _replay_purchase(self, order: Order) -> PurchaseStarted:
        """The same request again: what became of the purchase, as Stripe reports it now (and
        granted, if it is paid and the webhook has not done so yet)."""
        assert order.stripe_id is not None
        payment = await self._retrieve(order.action, order.stripe_id)
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
        except DomainError as err:
            if err.kind is not ErrorKind.UNAVAILABLE:
                raise
            # The money may be taken: answering an error would invite paying again. The webhook
            # for this payment grants the credits (same key) once the credit service is back.
            log.warning("grant of %s deferred to the webhook: %s", payment.id, err.message)
            async with self._db.transaction() as conn:
                await self._fulfilment.settle(conn, order, payment, grant=False)

    async def _start_order(self, order: Order) -> Order:
        async with self._db.autocommit() as conn:
            recorded = await self._store.start_order(conn, order)
        if recorded.ref != order.ref and not recorded.same_request(order):
            raise InvalidInput(KEY_REUSED)
        return recorded

    async def _retrieve(self, action: OrderAction, stripe_id: str) -> StripePayment:
        try:
            return await self._fulfilment.retrieve_payment(action, stripe_id)
        except Refused as refused:
            log.error("order's Stripe object unreadable: %s", refused)
            raise Unavailable(UNEXPECTED) from None

    # --- plans ---

    async def change_plan(
        self, identity: Identity, plan_name: str, client_key: str | None
    ) -> PlanChangeStarted:
        async with self._db.autocommit() as conn:
            plans = await self._store.list_plans(conn)
        target = choose_plan(plans, plan_name)
        client_key = validate_client_key(client_key)
        stripe = self._require_stripe()
        user = identity.user_id
        await self._ledger.require_account(user)
        request_key = stripe_request_key("plan", user, client_key)
        async with self._plan_lock(user):
            async with self._db.autocommit() as conn:
                earlier = await self._store.order_by_request_key(conn, request_key)
            if earlier is not None:
                if earlier.kind is not OrderKind.PLAN or earlier.plan_id != target.id:
                    raise InvalidInput(KEY_REUSED)
                if earlier.stripe_id is not None:
                    return await self._replay_plan(stripe, earlier, target)
            return await self._change_plan(
                stripe, _PlanRequest(identity, target, request_key, earlier), plans
            )

    @asynccontextmanager
    async def _plan_lock(self, user_id: str) -> AsyncIterator[None]:
        """One plan change of a user at a time, in this process and across replicas (the database
        lock is held, on its own connection, until the change is done)."""
        async with self._plan_locks.hold(user_id), self._db.transaction() as conn:
            await self._store.lock_plan_changes(conn, user_id)
            yield

    async def _change_plan(
        self, stripe: StripeApi, request: _PlanRequest, plans: Sequence[Plan]
    ) -> PlanChangeStarted:
        target, user = request.target, request.identity.user_id
        current = await self._live_subscription(stripe, user)
        if target.id == FREE_PLAN:
            if current is None:
                raise InvalidState("You are already on the Free plan")
            if not current.cancel_at_period_end:
                order = await self._plan_order(request, current.customer_id, OrderAction.CANCEL)
                current = self._subscription(
                    await stripe.set_cancel_at_period_end(
                        subscription_id=current.id, cancel=True, key=f"cancel:{order.ref}"
                    )
                )
                await self._bind(order, current.id)
            return _plan_started(target, "cancel_at_period_end", effective_at=current.period_end)

        price = self._config.plan_prices.get(target.id)
        if price is None:
            raise NotConfigured(f"The {target.name} plan cannot be bought: no Stripe price is set")
        customer, reusable = "", None
        if current is None:
            customer = await self._customer(stripe, request.identity)
            reusable, paid_meanwhile = await self._clear_checkouts(stripe, customer, user, target)
            if paid_meanwhile:
                current = await self._live_subscription(stripe, user)
        if current is None:
            order = await self._plan_order(request, customer, OrderAction.CHECKOUT)
            if reusable is not None:
                await self._bind(order, reusable.id)
                return _plan_started(target, "checkout", url=reusable.url, session=reusable.id)
            session = _read(
                stripe_objects.checkout_payment,
                await stripe.checkout_subscription(
                    customer_id=customer,
                    user_id=user,
                    plan_id=target.id,
                    price_id=price,
                    urls=self._config.urls,
                    order_ref=order.ref,
                    key=f"subscribe:{order.ref}",
                ),
            )
            await self._bind(order, session.id)
            return _plan_started(target, "checkout", url=session.url, session=session.id)

        if current.cancel_at_period_end:
            order = await self._plan_order(request, current.customer_id, OrderAction.RESUME)
            await stripe.set_cancel_at_period_end(
                subscription_id=current.id, cancel=False, key=f"resume:{order.ref}"
            )
            await self._bind(order, current.id)
            if current.plan_id == target.id:
                return _plan_started(target, "resumed", effective_at=current.period_end)
            request = _PlanRequest(request.identity, target, request.request_key, order)
        if current.plan_id == target.id:
            raise InvalidState(f"You are already on the {target.name} plan")
        if current.item_id is None:
            raise Unavailable("Stripe answered with an unexpected subscription")
        order = await self._plan_order(request, current.customer_id, OrderAction.UPDATE)
        await stripe.change_subscription_price(
            subscription_id=current.id,
            item_id=current.item_id,
            price_id=price,
            key=f"change:{order.ref}",
        )
        await self._bind(order, current.id, OrderAction.UPDATE)
        return _plan_started(target, "pending")

    async def _clear_checkouts(
        self, stripe: StripeApi, customer: str, user: str, target: Plan
    ) -> tuple[OpenCheckout | None, bool]:
        """Before a plan checkout: the user's open one for the same plan is reused, every other open
        subscription checkout is expired at Stripe (so at most one can be paid). Returns (the one to
        reuse, whether one was paid meanwhile: it could not be expired)."""
        reusable, paid_meanwhile = None, False
        for raw in await stripe.list_open_checkouts(customer):
            session = _read(stripe_objects.open_checkout, raw)
            if session is None:
                continue
            if reusable is None and await self._reusable(session, user, target):
                reusable = session
                continue
            if not await stripe.expire_checkout(session.id, key=f"expire:{session.id}"):
                paid_meanwhile = True
        return reusable, paid_meanwhile

    async def _reusable(self, session: OpenCheckout, user: str, target: Plan) -> bool:
        if session.plan_id != target.id or session.order_ref is None:
            return False
        if session.expires_at is None or session.expires_at < datetime.now(UTC) + (
            REUSE_MIN_REMAINING
        ):
            return False
        async with self._db.autocommit() as conn:
            order = await self._store.order_by_ref(conn, session.order_ref)
        return (
            order is not None
            and order.kind is OrderKind.PLAN
            and (order.user_id, order.plan_id) == (user, target.id)
        )

    async def _replay_plan(
        self, stripe: StripeApi, order: Order, target: Plan
    ) -> PlanChangeStarted:
        """The same request again: what became of the change it started."""
        assert order.stripe_id is not None
        if order.action is OrderAction.CHECKOUT:
            session = await self._retrieve(OrderAction.CHECKOUT, order.stripe_id)
            state = checkout_state(session)
            if state == "open":
                return _plan_started(target, "checkout", url=session.url, session=session.id)
            status = "paid" if state == "paid" else "expired" if state == "expired" else "pending"
            return _plan_started(target, status, session=session.id)
        sub = self._subscription(await stripe.retrieve_subscription(order.stripe_id))
        if order.action is OrderAction.UPDATE:
            applied = sub.live and sub.plan_id == target.id
            return _plan_started(target, "paid" if applied else "pending")
        if not sub.live:
            return _plan_started(target, "canceled", effective_at=sub.period_end)
        if sub.cancel_at_period_end:
            return _plan_started(target, "cancel_at_period_end", effective_at=sub.period_end)
        return _plan_started(target, "resumed", effective_at=sub.period_end)

    async def _plan_order(self, request: _PlanRequest, customer: str, action: OrderAction) -> Order:
        """The order a plan change is recorded under before Stripe is called (the earlier attempt's,
        for a retry of a request Stripe's answer never reached)."""
        if request.earlier is not None:
            return request.earlier
        return await self._start_order(
            Order(
                ref=new_order_ref(),
                request_key=request.request_key,
                user_id=request.identity.user_id,
                customer_id=customer,
                kind=OrderKind.PLAN,
                action=action,
                pack_id=None,
                plan_id=request.target.id,
                credits=0,
                amount_cents=request.target.price_cents,
                currency=request.target.currency,
            )
        )

    async def _bind(self, order: Order, stripe_id: str, action: OrderAction | None = None) -> None:
        async with self._db.autocommit() as conn:
            await self._store.bind_order(conn, order.ref, stripe_id, action or order.action)

    # --- history ---

    async def history(
        self, user_id: str, *, limit: int, before_id: int | None
    ) -> Sequence[Payment]:
        """Up to `limit` of the user's payments before `before_id`, newest first."""
        async with self._db.autocommit() as conn:
            return await self._store.list_payments(conn, user_id, limit=limit, before_id=before_id)

    # --- helpers ---

    def _require_stripe(self) -> StripeApi:
        if self._stripe is None:
            raise NotConfigured(NOT_CONFIGURED)
        return self._stripe

    def _subscription(self, raw: Mapping[str, Any]) -> Subscription:
        return _read(lambda r: stripe_objects.subscription(r, self._config.price_plans), raw)

    async def customer(self, identity: Identity) -> str:
        """The user's Stripe customer (created once), for other use cases (auto top-up)."""
        return await self._customer(self._require_stripe(), identity)

    async def _customer(self, stripe: StripeApi, identity: Identity) -> str:
        """The user's Stripe customer, created once: the creation's Idempotency-Key is the user's,
        so concurrent first purchases get the same customer from Stripe, recorded once."""
        async with self._db.autocommit() as conn:
            existing = await self._store.customer_id(conn, identity.user_id)
        if existing is not None:
            return existing
        created = await stripe.create_customer(
            user_id=identity.user_id, email=identity.email, key=customer_key(identity.user_id)
        )
        async with self._db.autocommit() as conn:
            return await self._store.add_customer(conn, identity.user_id, created)

    async def _live_subscription(self, stripe: StripeApi, user_id: str) -> Subscription | None:
        """The user's live subscription as Stripe has it now (not as the webhooks told us so far:
        a subscription whose events are still on their way must not lead to a second one)."""
        async with self._db.autocommit() as conn:
            customer = await self._store.customer_id(conn, user_id)
            plans = await self._store.list_plans(conn)
        if customer is None:
            return None
        listed = [self._subscription(raw) for raw in await stripe.list_subscriptions(customer)]
        live = [s for s in listed if s.live]
        rank = {p.id: i for i, p in enumerate(plans)}
        return max(live, key=lambda s: rank.get(s.plan_id or "", -1), default=None)


@dataclass(frozen=True)
class _PlanRequest:
    identity: Identity
    target: Plan
    request_key: str
    earlier: Order | None


def _read(parse: Callable[[Mapping[str, Any]], T], raw: Mapping[str, Any]) -> T:
    """An object from Stripe's own API answer; one we cannot read is Stripe's fault, not the
    caller's."""
    try:
        return parse(raw)
    except Refused as refused:
        log.error("unreadable Stripe answer: %s", refused)
        raise Unavailable(UNEXPECTED) from None


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


_PLAN_MESSAGES = {
    "checkout": "Complete the checkout to switch to the {name} plan",
    "pending": "Your plan changes to {name} once Stripe confirms the payment",
    "paid": "Your {name} plan is paid",
    "expired": "This checkout expired; ask for the {name} plan again to get a new one",
    "resumed": "You stay on the {name} plan",
    "cancel_at_period_end": "Your plan changes to Free at the end of the current billing period",
    "canceled": "Your subscription has ended; you are on the Free plan",
}


def _plan_started(
    target: Plan,
    status: str,
    *,
    url: str = "",
    session: str = "",
    effective_at: datetime | None = None,
) -> PlanChangeStarted:
    return PlanChangeStarted(
        plan_id=target.id,
        status=status,
        message=_PLAN_MESSAGES[status].format(name=target.name),
        checkout_url=url,
        session_id=session,
        effective_at=effective_at,
    )
