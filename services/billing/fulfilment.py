"""What billing does once Stripe has confirmed something: credit purchases granted, plans placed on
the credit account, duplicate subscriptions undone. An event is only ever a trigger: what it names
is checked against our records (the order we started, the customer we have for the user) and read
back from Stripe's API before anything happens; a mismatch is `Refused` (acknowledged, changes
nothing).

Every step runs on the caller's transaction (a webhook's, which also records the event id) and calls
the credit service with an idempotency key that names the purchase or the plan change, so a repeat
of anything (a redelivered event, a crash before commit, the PaymentIntent path and the webhook path
reporting the same payment) changes the ledger once."""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime, timedelta

from services.billing import payment_store, store, stripe_objects
from services.billing.config import BillingConfig
from services.billing.domain import (
    Order,
    OrderAction,
    OrderKind,
    PaymentKind,
    PaymentStatus,
    Plan,
    Refused,
    StripePayment,
    checkout_grant_key,
    clawback_credits,
    intent_grant_key,
    purchase_problems,
)
from services.billing.plan_rules import (
    Invoice,
    PlanPlacement,
    Subscription,
    keep_one,
    placement_changed,
    placement_for,
    plan_change_key,
    plan_terms,
)
from services.billing.statements import BillingStore, PaymentStore
from services.billing.stripe_api import StripeApi, StripeObjectNotFound, StripeRefusedRequest
from services.credit.client import CreditClient
from services.credit.domain import Category, PlanTerms
from services.kit.clients import ServiceChannels
from services.kit.db import Database
from services.kit.errors import NotConfigured, NotFound
from services.kit.sql import Connection

log = logging.getLogger("studiox.billing")

CREDIT_TIMEOUT_SECONDS = 10.0
NOT_CONFIGURED = "Payments are not configured"


class Ledger:
    """The credit service, as billing uses it: purchases granted as `purchased` credits, plans
    placed as terms, both under keys that name the payment or the plan change."""

    def __init__(self, channels: ServiceChannels) -> None:
        self._credit = CreditClient(channels, timeout=CREDIT_TIMEOUT_SECONDS)

    async def require_account(self, user_id: str) -> None:
        try:
            await self._credit.account(user_id)
        except NotFound as error:
            raise NotFound("Credit account not found; initialize the user first") from error

    async def grant(self, user_id: str, credits: int, key: str, reference: str) -> bool:
        posted = await self._credit.grant(
            user_id,
            credits,
            Category.PURCHASED,
            key=key,
            reference=reference,
            description=f"Purchased {credits} credits",
        )
        return posted.applied

    async def clawback(
        self, user_id: str, key: str, credits: int, reference: str, description: str
    ) -> int:
        """Bring the credits taken back for the purchase granted under `key` to `credits` (a
        state: repeating it changes nothing); returns the credits taken back now in all."""
        clawed = await self._credit.clawback(
            user_id, grant_key=key, target=credits, reference=reference, description=description
        )
        return clawed.clawed_credits

    async def set_plan(
        self, user_id: str, plan: Plan, key: str, period_end: datetime | None, *, paid: bool
    ) -> None:
        allowance, unlimited = plan_terms(plan, paid)
        terms = PlanTerms(plan.id, allowance, unlimited, plan.features)
        # A period already over (a very late event) gets the credit service's default period.
        if period_end is not None and period_end <= datetime.now(UTC) + timedelta(minutes=1):
            period_end = None
        await self._credit.set_plan(
            user_id, terms, key=key, start_new_period=True, period_end=period_end
        )


def grant_key(payment: StripePayment) -> str:
    if payment.action is OrderAction.CHECKOUT:
        return checkout_grant_key(payment.id)
    return intent_grant_key(payment.id)


class Fulfilment:
    def __init__(
        self,
        db: Database,
        ledger: Ledger,
        stripe: StripeApi | None,
        config: BillingConfig,
        records: BillingStore = store,
        payment_records: PaymentStore = payment_store,
    ) -> None:
        self._db = db
        self._store = records
        self._payments = payment_records
        self._ledger = ledger
        self._stripe = stripe
        self._config = config

    def _require_stripe(self) -> StripeApi:
        if self._stripe is None:
            raise NotConfigured(NOT_CONFIGURED)
        return self._stripe

    # --- credit purchases ---

    async def settle(
        self, conn: Connection, order: Order, payment: StripePayment, *, grant: bool = True
    ) -> bool:
        """Record what Stripe (its API, not an event) reports for the purchase `order` started, and
        grant the order's credits once it is paid (and `grant`). Returns whether this call granted
        them. The user, credits and price are the order's; Stripe's object must match it."""
        problems = purchase_problems(order, payment)
        if problems:
            raise Refused(f"{payment.id} does not match order {order.ref}: {'; '.join(problems)}")
        if order.stripe_id is None:
            await self._store.bind_order(conn, order.ref, payment.id)
        key = grant_key(payment)
        await self._payments.save_payment(
            conn,
            user_id=order.user_id,
            stripe_id=payment.id,
            kind=PaymentKind.CREDITS,
            status=payment.status,
            amount_cents=order.amount_cents,
            currency=order.currency,
            credits=order.credits,
            pack_id=order.pack_id,
            grant_key=key,
        )
        if payment.status is not PaymentStatus.SUCCEEDED or not grant:
            return False
        granted = await self._ledger.grant(order.user_id, order.credits, key, payment.id)
        log.info(
            "credits purchased",
            extra={"user_id": order.user_id, "stripe_id": payment.id, "granted": granted},
        )
        return granted

    async def confirm_purchase(
        self, conn: Connection, claimed: StripePayment, *, failed: bool = False
    ) -> None:
        """A webhook names a Checkout Session (payment mode) or PaymentIntent: settle the order it
        belongs to, as Stripe's API reports the object now. `failed`: Stripe reported that an
        asynchronous payment failed."""
        order = await self._store.credit_order_of(conn, claimed.id)
        if order is None and claimed.order_ref is not None:
            order = await self._store.order_by_ref(conn, claimed.order_ref)
        if order is None or order.kind is not OrderKind.CREDITS:
            raise Refused(f"{claimed.id} is not a purchase this system started")
        if claimed.customer_id is not None and claimed.customer_id != order.customer_id:
            raise Refused(f"{claimed.id} is named for another customer than its order's")
        fresh = await self.retrieve_payment(claimed.action, claimed.id)
        if failed and fresh.status is PaymentStatus.PENDING:
            fresh = dataclasses.replace(fresh, status=PaymentStatus.FAILED)
        await self.settle(conn, order, fresh)

    # --- money taken back ---

    async def reverse(self, conn: Connection, intent_id: str | None, charge_id: str | None) -> bool:
        """A refund or dispute was reported for a payment: if it is one of our credit purchases,
        take back the credits in proportion to what Stripe's API says was returned (refunds, and
        disputed amounts it withdrew); a won dispute gives them back. False when the payment is not
        a purchase of ours (a subscription invoice, say).

        Exactly once whatever is redelivered or reordered: the target is a state read from Stripe
        under a lock on the order, and the ledger moves only by the difference to what it took."""
        stripe = self._require_stripe()
        if intent_id is None:
            if charge_id is None:
                raise Refused("refund or dispute without a payment")
            try:
                intent_id = stripe_objects.intent_of_charge(await stripe.retrieve_charge(charge_id))
            except StripeObjectNotFound:
                raise Refused(f"charge {charge_id} does not exist at Stripe") from None
            if intent_id is None:
                return False
        order = await self._order_of_intent(conn, intent_id)
        if order is None:
            return False
        await self._store.lock_order(conn, order.ref)
        try:
            raw = await stripe.retrieve_intent_with_charge(intent_id)
        except StripeObjectNotFound:
            raise Refused(f"{intent_id} does not exist at Stripe") from None
        if stripe_objects.customer_of(raw) != order.customer_id:
            raise Refused(f"{intent_id} belongs to another customer than its order")
        assert order.stripe_id is not None
        purchase = await self.retrieve_payment(order.action, order.stripe_id)
        if order.action is OrderAction.CHECKOUT and purchase.payment_intent_id != intent_id:
            raise Refused(f"{intent_id} is not the payment of {order.stripe_id}")
        # The payment itself may not be reported yet (events arrive in any order): settle it.
        await self.settle(conn, order, purchase)
        if purchase.status is not PaymentStatus.SUCCEEDED:
            return True
        money = stripe_objects.money_back(raw, await stripe.list_disputes(intent_id))
        target = clawback_credits(order.credits, money)
        before = await self._payments.payment_of(conn, order.stripe_id)
        earlier = before.clawed_credits if before else 0
        description = (
            "Dispute won: credits given back"
            if target < earlier
            else f"Credits of a {'disputed' if money.disputed_cents else 'refunded'} payment"
        )
        clawed = await self._ledger.clawback(
            order.user_id, grant_key(purchase), target, intent_id, description
        )
        await self._payments.record_money_back(
            conn,
            order.stripe_id,
            refunded_cents=money.refunded_cents,
            dispute_status=money.dispute_status,
            clawed_credits=clawed,
        )
        log.info(
            "payment reversal",
            extra={
                "user_id": order.user_id,
                "stripe_id": order.stripe_id,
                "refunded_cents": money.refunded_cents,
                "disputed_cents": money.disputed_cents,
                "clawed_credits": clawed,
            },
        )
        return True

    async def _order_of_intent(self, conn: Connection, intent_id: str) -> Order | None:
        """The credit purchase a PaymentIntent paid: its own order, or the Checkout Session order
        named in its metadata (which only we set; read back from Stripe's API, and checked against
        the session by the caller)."""
        order = await self._store.credit_order_of(conn, intent_id)
        if order is not None:
            return order
        stripe = self._require_stripe()
        try:
            intent = stripe_objects.intent_payment(await stripe.retrieve_intent(intent_id))
        except StripeObjectNotFound:
            raise Refused(f"{intent_id} does not exist at Stripe") from None
        if intent.order_ref is None:
            return None
        order = await self._store.order_by_ref(conn, intent.order_ref)
        if (
            order is None
            or order.kind is not OrderKind.CREDITS
            or order.action is not OrderAction.CHECKOUT
            or order.stripe_id is None
        ):
            return None
        return order

    async def retrieve_payment(self, action: OrderAction, stripe_id: str) -> StripePayment:
        stripe = self._require_stripe()
        try:
            if action is OrderAction.CHECKOUT:
                return stripe_objects.checkout_payment(await stripe.retrieve_checkout(stripe_id))
            return stripe_objects.intent_payment(await stripe.retrieve_intent(stripe_id))
        except StripeObjectNotFound:
            raise Refused(f"{stripe_id} does not exist at Stripe") from None

    # --- subscriptions ---

    async def sync_subscription(
        self, conn: Connection, customer_id: str | None, subscription_id: str | None
    ) -> tuple[str, Subscription | None]:
        """Bring the user whose customer `customer_id` is in line with that customer's
        subscriptions as Stripe reports them *now*: at most one is kept (the others are cancelled
        and refunded), and the account is placed on the kept one's plan and period, with its
        allowance only once the period is paid. Returns (user, the named subscription).

        The user's customer row is locked first, so syncs of one user run one after another and
        each reads Stripe after the previous one committed: events arriving late or out of order
        cannot put back an older state, and two syncs never both keep a different subscription."""
        user = await self._store.user_of_customer(conn, customer_id) if customer_id else None
        if user is None:
            raise Refused(f"customer {customer_id} is not one of ours")
        placement = await self._store.lock_placement(conn, user)
        assert placement is not None
        stripe = self._require_stripe()
        named = None
        if subscription_id is not None:
            try:
                raw = await stripe.retrieve_subscription(subscription_id)
            except StripeObjectNotFound:
                raise Refused(f"subscription {subscription_id} does not exist at Stripe") from None
            named = self._subscription(raw)
            if named.customer_id != placement.customer_id:
                raise Refused(f"subscription {subscription_id} belongs to another customer")
            await self._store.save_subscription(conn, user, named)
        listed = [
            self._subscription(raw)
            for raw in await stripe.list_subscriptions(placement.customer_id)
        ]
        plans = await self._store.list_plans(conn)
        kept, duplicates = keep_one(listed, plans, placement.subscription_id)
        for sub in listed:
            if sub not in duplicates:
                await self._store.save_subscription(conn, user, sub)
        for duplicate in duplicates:
            await self._undo_duplicate(conn, user, duplicate)
        desired = placement_for(kept, plans)
        if placement_changed(placement.plan_id, placement.period_start, desired, placement.paid):
            await self._place(conn, user, plans, desired, placement.changes + 1)
        return user, named

    async def record_invoice(self, conn: Connection, claimed: Invoice, *, failed: bool) -> None:
        """An invoice event: the invoice (read back from Stripe, and checked to be the one the
        event names) goes to the history, and its subscription is synced."""
        if claimed.customer_id is None or claimed.subscription_id is None:
            raise Refused(f"invoice {claimed.id} names no customer or subscription")
        stripe = self._require_stripe()
        try:
            fresh = stripe_objects.invoice(await stripe.retrieve_invoice(claimed.id))
        except StripeObjectNotFound:
            raise Refused(f"invoice {claimed.id} does not exist at Stripe") from None
        if (fresh.customer_id, fresh.subscription_id) != (
            claimed.customer_id,
            claimed.subscription_id,
        ):
            raise Refused(f"invoice {claimed.id} belongs to another customer or subscription")
        user, subscription = await self.sync_subscription(
            conn, claimed.customer_id, claimed.subscription_id
        )
        await self._payments.save_payment(
            conn,
            user_id=user,
            stripe_id=fresh.id,
            kind=PaymentKind.SUBSCRIPTION,
            status=fresh.payment_status(failed=failed),
            amount_cents=fresh.amount_cents,
            currency=fresh.currency,
            plan_id=subscription.plan_id if subscription else None,
        )

    def _subscription(self, raw: dict[str, object]) -> Subscription:
        return stripe_objects.subscription(raw, self._config.price_plans)

    async def _undo_duplicate(self, conn: Connection, user_id: str, sub: Subscription) -> None:
        """A second live subscription (two checkouts paid): cancelled now and its invoice refunded
        through Stripe. The refund is recorded at once, in its own transaction: it happened at
        Stripe whatever becomes of this one."""
        stripe = self._require_stripe()
        try:
            sub = self._subscription(
                await stripe.cancel_subscription(sub.id, key=f"duplicate-cancel:{sub.id}")
            )
        except StripeRefusedRequest:
            sub = dataclasses.replace(sub, status="canceled")  # cancelled meanwhile
        await self._store.save_subscription(conn, user_id, sub)
        refunded = None
        if sub.latest_invoice_id is not None:
            invoice = stripe_objects.invoice(await stripe.retrieve_invoice(sub.latest_invoice_id))
            if invoice.status == "paid" and invoice.payment_intent_id is not None:
                await stripe.refund(
                    invoice.payment_intent_id,
                    reason="duplicate_subscription",
                    key=f"duplicate-refund:{invoice.id}",
                )
                async with self._db.autocommit() as own:
                    await self._payments.save_payment(
                        own,
                        user_id=user_id,
                        stripe_id=invoice.id,
                        kind=PaymentKind.SUBSCRIPTION,
                        status=PaymentStatus.REFUNDED,
                        amount_cents=invoice.amount_cents,
                        currency=invoice.currency,
                        plan_id=sub.plan_id,
                    )
                refunded = invoice.id
        log.warning(
            "duplicate subscription cancelled",
            extra={"user_id": user_id, "subscription_id": sub.id, "refunded_invoice": refunded},
        )

    async def _place(
        self,
        conn: Connection,
        user_id: str,
        plans: list[Plan],
        desired: PlanPlacement,
        sequence: int,
    ) -> None:
        plan = next(p for p in plans if p.id == desired.plan_id)
        await self._ledger.set_plan(
            user_id,
            plan,
            plan_change_key(sequence, desired),
            desired.period_end,
            paid=desired.paid,
        )
        await self._store.record_placement(conn, user_id, desired, sequence)
        log.info(
            "plan placed",
            extra={
                "user_id": user_id,
                "plan": plan.id,
                "paid": desired.paid,
                "period_end": desired.period_end,
            },
        )
