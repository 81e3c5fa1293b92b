"""Service layer of plan changes: a user's subscription started (a Checkout Session), moved to
another plan, set to end at the period's end, or resumed. Nothing here changes the credit account:
the plan is placed once Stripe reports it (services.billing.fulfilment).

Every change is an order recorded before Stripe is called (services.billing.orders). A request
repeated with its Idempotency-Key finds its order and reports what became of it. A user's plan
changes run one at a time, and a new plan checkout reuses the user's open one for the same plan or
expires the others, so concurrent upgrades open one payable session."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from services.billing import store, stripe_objects
from services.billing.config import BillingConfig
from services.billing.domain import (
    FREE_PLAN,
    Order,
    OrderAction,
    OrderKind,
    Plan,
    checkout_state,
    choose_plan,
    new_order_ref,
    stripe_request_key,
    validate_client_key,
)
from services.billing.fulfilment import Ledger
from services.billing.locks import KeyedLocks
from services.billing.orders import KEY_REUSED, Orders, read
from services.billing.plan_rules import Subscription
from services.billing.statements import BillingStore
from services.billing.stripe_api import StripeApi
from services.billing.stripe_objects import OpenCheckout
from services.kit.context import Identity
from services.kit.db import Database
from services.kit.errors import InvalidInput, InvalidState, NotConfigured, Unavailable

# An open checkout is handed out again only while the buyer has time to pay it.
REUSE_MIN_REMAINING = timedelta(minutes=10)


@dataclass(frozen=True)
class PlanChangeStarted:
    plan_id: str
    status: str
    message: str
    checkout_url: str = ""
    session_id: str = ""
    effective_at: datetime | None = None


class PlanChanges:
    def __init__(
        self,
        db: Database,
        ledger: Ledger,
        orders: Orders,
        config: BillingConfig,
        records: BillingStore = store,
    ) -> None:
        self._db = db
        self._store = records
        self._ledger = ledger
        self._orders = orders
        self._config = config
        self._plan_locks = KeyedLocks()

    async def change_plan(
        self, identity: Identity, plan_name: str, client_key: str | None
    ) -> PlanChangeStarted:
        async with self._db.autocommit() as conn:
            plans = await self._store.list_plans(conn)
        target = choose_plan(plans, plan_name)
        client_key = validate_client_key(client_key)
        stripe = self._orders.stripe()
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
                await self._orders.bind(order, current.id)
            return _plan_started(target, "cancel_at_period_end", effective_at=current.period_end)

        price = self._config.plan_prices.get(target.id)
        if price is None:
            raise NotConfigured(f"The {target.name} plan cannot be bought: no Stripe price is set")
        customer, reusable = "", None
        if current is None:
            customer = await self._orders.customer(request.identity)
            reusable, paid_meanwhile = await self._clear_checkouts(stripe, customer, user, target)
            if paid_meanwhile:
                current = await self._live_subscription(stripe, user)
        if current is None:
            order = await self._plan_order(request, customer, OrderAction.CHECKOUT)
            if reusable is not None:
                await self._orders.bind(order, reusable.id)
                return _plan_started(target, "checkout", url=reusable.url, session=reusable.id)
            session = read(
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
            await self._orders.bind(order, session.id)
            return _plan_started(target, "checkout", url=session.url, session=session.id)

        if current.cancel_at_period_end:
            order = await self._plan_order(request, current.customer_id, OrderAction.RESUME)
            await stripe.set_cancel_at_period_end(
                subscription_id=current.id, cancel=False, key=f"resume:{order.ref}"
            )
            await self._orders.bind(order, current.id)
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
        await self._orders.bind(order, current.id, OrderAction.UPDATE)
        return _plan_started(target, "pending")

    async def _clear_checkouts(
        self, stripe: StripeApi, customer: str, user: str, target: Plan
    ) -> tuple[OpenCheckout | None, bool]:
        """Before a plan checkout: the user's open one for the same plan is reused, every other open
        subscription checkout is expired at Stripe (so at most one can be paid). Returns (the one to
        reuse, whether one was paid meanwhile: it could not be expired)."""
        reusable, paid_meanwhile = None, False
        for raw in await stripe.list_open_checkouts(customer):
            session = read(stripe_objects.open_checkout, raw)
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
            session = await self._orders.retrieve(OrderAction.CHECKOUT, order.stripe_id)
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
        return await self._orders.start(
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

    def _subscription(self, raw: Mapping[str, Any]) -> Subscription:
        return read(lambda r: stripe_objects.subscription(r, self._config.price_plans), raw)

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
