"""Helpers for tests that pay through the real billing service and the local Stripe emulator."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterable
from typing import Any

import grpc
from google.api import httpbody_pb2
from prometheus_client import REGISTRY

from devstack.stripe_emulator import StripeEmulator, body_of, sign
from services.kit.errors import reason_of
from services.kit.migrate import upgrade_all
from services.kit.settings import ServiceName, Settings
from studiox.billing.v1 import billing_pb2, billing_pb2_grpc
from studiox.user.v1 import user_pb2, user_pb2_grpc
from tests.support.cluster import Cluster
from tests.support.tokens import DEFAULT_KEY, bearer, new_user_id

PAID_SERVICES: tuple[ServiceName, ...] = ("credit", "user", "billing")


async def start_paid_cluster(settings: Settings) -> Cluster:
    """The services a payment touches (credit, user, billing), over a migrated database."""
    await asyncio.to_thread(upgrade_all, settings)
    cluster = Cluster(settings)
    for name in PAID_SERVICES:
        await cluster.start(name)
    return cluster


def auth(user: str, *extra: tuple[str, str]) -> tuple[tuple[str, str], ...]:
    return (*bearer(DEFAULT_KEY.mint(user)), *extra)


class BillingClient:
    def __init__(self, cluster: Cluster, stripe: StripeEmulator) -> None:
        self.stub = billing_pb2_grpc.BillingServiceStub(cluster.channel("billing"))
        self.users = user_pb2_grpc.UserServiceStub(cluster.channel("user"))
        self.stripe = stripe

    async def signup(self) -> str:
        user = new_user_id()
        await self.users.InitializeUser(
            user_pb2.InitializeUserRequest(email=f"{user}@example.com"), metadata=auth(user)
        )
        return user

    async def purchase(
        self,
        user: str,
        *,
        pack_id: str = "",
        credits: int = 0,
        payment_method_id: str = "",
        key: str | None = None,
    ) -> billing_pb2.PurchaseCreditsResponse:
        extra = (("idempotency-key", key),) if key else ()
        return await self.stub.PurchaseCredits(
            billing_pb2.PurchaseCreditsRequest(
                pack_id=pack_id, credits=credits, payment_method_id=payment_method_id
            ),
            metadata=auth(user, *extra),
            timeout=10,
        )

    async def change_plan(
        self, user: str, plan: str, key: str | None = None
    ) -> billing_pb2.UpgradePlanResponse:
        extra = (("idempotency-key", key),) if key else ()
        return await self.stub.UpgradePlan(
            billing_pb2.UpgradePlanRequest(plan_name=plan), metadata=auth(user, *extra), timeout=10
        )

    async def history(
        self, user: str, limit: int = 0, cursor: str = ""
    ) -> billing_pb2.ListPaymentsResponse:
        return await self.stub.ListPayments(
            billing_pb2.ListPaymentsRequest(limit=limit, cursor=cursor), metadata=auth(user)
        )

    async def post(self, body: bytes, signature: str | None) -> billing_pb2.HandleWebhookResponse:
        metadata = (("stripe-signature", signature),) if signature is not None else ()
        return await self.stub.HandleWebhook(
            billing_pb2.HandleWebhookRequest(
                body=httpbody_pb2.HttpBody(content_type="application/json", data=body)
            ),
            metadata=metadata,
            timeout=15,
        )

    async def deliver(self, event: dict[str, Any]) -> billing_pb2.HandleWebhookResponse:
        """One delivery, signed as Stripe signs it."""
        body = body_of(event)
        return await self.post(body, sign(body, self.stripe.webhook_secret))

    async def deliver_all(self, events: Iterable[dict[str, Any]]) -> None:
        for event in events:
            await self.deliver(event)

    async def deliver_pending(self) -> None:
        """Everything Stripe has queued (in order)."""
        await self.deliver_all(self.stripe.take_events())


def status_of(err: grpc.aio.AioRpcError) -> tuple[grpc.StatusCode, str | None]:
    return err.code(), reason_of(err)


def events_counted(event_type: str, outcome: str) -> float:
    """studiox_webhook_events_total of this process (the in-process cluster's billing service)."""
    labels = {"type": event_type, "outcome": outcome}
    return REGISTRY.get_sample_value("studiox_webhook_events_total", labels) or 0.0


def customer_of(stripe: StripeEmulator, user: str) -> str:
    """The user's Stripe customer, as Stripe has it."""
    return next(
        c["id"] for c in stripe.customers.values() if c["metadata"].get("studiox_user_id") == user
    )


def open_session_at_stripe(stripe: StripeEmulator, user: str, price: str) -> str:
    """A subscription Checkout Session opened at Stripe for the user's customer without going
    through this release (one an earlier release left open, or one being paid at the very moment
    it was expired): what the one-subscription rule must survive."""
    metadata = {"studiox_user_id": user}
    status, body, _ = stripe.handle(
        "POST",
        "/v1/checkout/sessions",
        {
            "mode": "subscription",
            "customer": customer_of(stripe, user),
            "line_items": [{"price": price, "quantity": "1"}],
            "metadata": metadata,
            "subscription_data": {"metadata": metadata},
            "success_url": "http://localhost:5173/billing",
        },
        f"Bearer {stripe.secret_key}",
        f"test-session:{secrets.token_hex(8)}",
    )
    assert status == 200, body
    return str(body["id"])
