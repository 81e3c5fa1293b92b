"""What billing does once Stripe has confirmed something: credit purchases granted, plans placed on
the credit account. Every step runs on the caller's transaction (a webhook's, which also records the
event id) and calls the credit service with an idempotency key that names the purchase or the plan
change, so a repeat of anything (a redelivered event, a crash before commit, the PaymentIntent path
and the webhook path reporting the same payment) changes the ledger once."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import grpc
from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing import store, stripe_objects
from services.billing.config import BillingConfig
from services.billing.domain import (
    PaymentKind,
    PaymentStatus,
    Plan,
    PlanPlacement,
    Purchase,
    Subscription,
    desired_placement,
    placement_changed,
    plan_change_key,
)
from services.billing.stripe_api import StripeApi, StripeObjectNotFound
from services.kit.clients import ServiceChannels, domain_error
from services.kit.errors import ErrorKind, NotConfigured, NotFound
from studiox.credit.v1 import credit_pb2, credit_pb2_grpc

log = logging.getLogger("studiox.billing")

CREDIT_TIMEOUT_SECONDS = 10.0
NOT_CONFIGURED = "Payments are not configured"


class Ledger:
    """The credit service, as billing uses it."""

    def __init__(self, channels: ServiceChannels) -> None:
        self._stub = credit_pb2_grpc.CreditInternalServiceStub(channels.channel("credit"))

    async def require_account(self, user_id: str) -> None:
        try:
            await self._stub.GetAccount(
                credit_pb2.GetAccountRequest(user_id=user_id), timeout=CREDIT_TIMEOUT_SECONDS
            )
        except grpc.aio.AioRpcError as err:
            error = domain_error(err)
            if error.kind is ErrorKind.NOT_FOUND:
                raise NotFound("Credit account not found; initialize the user first") from err
            raise error from err

    async def grant(self, user_id: str, purchase: Purchase) -> bool:
        try:
            reply = await self._stub.Grant(
                credit_pb2.GrantRequest(
                    user_id=user_id,
                    amount=purchase.credits,
                    bucket=credit_pb2.BUCKET_PURCHASED,
                    idempotency_key=purchase.grant_key,
                    reference=purchase.stripe_id,
                    description=f"Purchased {purchase.credits} credits",
                ),
                timeout=CREDIT_TIMEOUT_SECONDS,
            )
        except grpc.aio.AioRpcError as err:
            raise domain_error(err) from err
        return bool(reply.applied)

    async def set_plan(
        self, user_id: str, plan: Plan, key: str, period_end: datetime | None
    ) -> None:
        request = credit_pb2.SetPlanRequest(
            user_id=user_id,
            terms=credit_pb2.PlanTerms(
                plan_name=plan.id,
                monthly_allowance=plan.monthly_credits,
                is_unlimited=plan.is_unlimited,
                features=plan.features,
            ),
            idempotency_key=key,
            start_new_period=True,
        )
        # A period already over (a very late event) gets the credit service's default period.
        if period_end is not None and period_end > datetime.now(UTC) + timedelta(minutes=1):
            request.period_end.FromDatetime(period_end)
        try:
            await self._stub.SetPlan(request, timeout=CREDIT_TIMEOUT_SECONDS)
        except grpc.aio.AioRpcError as err:
            raise domain_error(err) from err


class Fulfilment:
    def __init__(self, ledger: Ledger, stripe: StripeApi | None, config: BillingConfig) -> None:
        self._ledger = ledger
        self._stripe = stripe
        self._config = config

    async def purchase(
        self,
        conn: AsyncConnection,
        purchase: Purchase,
        user_id: str | None = None,
        *,
        grant: bool = True,
    ) -> bool:
        """Record the purchase's status; grant its credits when Stripe says it is paid (and `grant`).
        Returns whether this call granted them."""
        user = user_id or purchase.user_id
        if user is None and purchase.customer_id:
            user = await store.user_of_customer(conn, purchase.customer_id)
        if user is None:
            log.warning("purchase %s names no StudioX user; ignored", purchase.stripe_id)
            return False
        await store.save_payment(
            conn,
            user_id=user,
            stripe_id=purchase.stripe_id,
            kind=PaymentKind.CREDITS,
            status=purchase.status,
            amount_cents=purchase.amount_cents,
            currency=purchase.currency,
            credits=purchase.credits,
            pack_id=purchase.pack_id,
            grant_key=purchase.grant_key,
        )
        if purchase.status is not PaymentStatus.SUCCEEDED or not grant:
            return False
        granted = await self._ledger.grant(user, purchase)
        log.info(
            "credits purchased",
            extra={"user_id": user, "stripe_id": purchase.stripe_id, "granted": granted},
        )
        return granted

    async def sync_subscription(
        self, conn: AsyncConnection, customer_id: str | None, subscription_id: str
    ) -> tuple[str, Subscription] | None:
        """Bring the user's plan in line with the subscription's state as Stripe reports it *now*.

        The user's customer row is locked first, so syncs of one user run one after another and
        each reads Stripe after the previous one committed: events arriving late or out of order
        cannot put back an older state. The plan moves only when the best live subscription's
        (plan, billing period) differs from what was last placed: a renewal's new period resets
        the allowance, repeats of the same state change nothing. Returns (user, subscription)."""
        user = await store.user_of_customer(conn, customer_id) if customer_id else None
        if user is None:
            log.warning("subscription %s of an unknown customer; ignored", subscription_id)
            return None
        placement = await store.lock_placement(conn, user)
        assert placement is not None
        if self._stripe is None:
            raise NotConfigured(NOT_CONFIGURED)
        try:
            raw = await self._stripe.retrieve_subscription(subscription_id)
        except StripeObjectNotFound:
            log.warning("subscription %s not found at Stripe; ignored", subscription_id)
            return None
        fresh = stripe_objects.subscription(raw, self._config.price_plans)
        await store.save_subscription(conn, user, fresh)
        plans = await store.list_plans(conn)
        live = await store.subscriptions(conn, user, placement.customer_id, live_only=True)
        desired = desired_placement(live, plans)
        if placement_changed(placement.plan_id, placement.period_start, desired):
            await self._place(conn, user, plans, desired, placement.changes + 1)
        return user, fresh

    async def _place(
        self,
        conn: AsyncConnection,
        user_id: str,
        plans: list[Plan],
        desired: PlanPlacement,
        sequence: int,
    ) -> None:
        plan = next(p for p in plans if p.id == desired.plan_id)
        await self._ledger.set_plan(
            user_id, plan, plan_change_key(sequence, desired), desired.period_end
        )
        await store.record_placement(conn, user_id, desired, sequence)
        log.info(
            "plan placed",
            extra={"user_id": user_id, "plan": plan.id, "period_end": desired.period_end},
        )
