"""Service layer of auto top-up: a user's settings (`PUT/GET /api/billing/auto-top-up`), the card
saved through Checkout in setup mode, and the top-up bought when a charge takes the balance below
the threshold.

The credit service detects the crossing (a trigger, in the charge's own transaction) and records
it once; the scheduler hands each crossing here. A crossing gets exactly one top-up row and one
off-session PaymentIntent whose Stripe Idempotency-Key is derived from the crossing, so retries and
concurrent runs reach the same payment. Credits come only from the confirmed PaymentIntent, through
the purchase path (`Fulfilment.settle`, the same grant key as its webhook). The top-up's outcome,
its webhook event (`topup.succeeded` / `topup.failed`) and the failure count commit together;
after `max_failures` consecutive failures (declines, authentication required) auto top-up turns
itself off and the user gets an alert."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.billing import store, topup_store
from services.billing.config import BillingConfig
from services.billing.domain import CreditPack, Order, OrderAction, OrderKind, new_order_ref
from services.billing.fulfilment import NOT_CONFIGURED, Fulfilment
from services.billing.statements import BillingStore
from services.billing.stripe_api import CardDeclined, StripeApi
from services.billing.stripe_objects import META_USER, intent_payment
from services.billing.topup_store import TopUp, TopUpSettings
from services.kit.clients import ServiceChannels
from services.kit.context import Identity
from services.kit.db import Database
from services.kit.errors import InvalidInput, NotConfigured, domain_error
from services.kit.sql import Connection
from studiox.credit.v1 import alerts_pb2, alerts_pb2_grpc

log = logging.getLogger("studiox.billing.topup")

CREDIT_TIMEOUT_SECONDS = 10.0
MAX_THRESHOLD = 1_000_000


class AutoTopUpConfig(BaseSettings):
    """AUTO_TOP_UP_* variables."""

    model_config = SettingsConfigDict(env_prefix="AUTO_TOP_UP_", env_file=".env", extra="ignore")

    # Consecutive failed top-ups (declines, authentication required) that turn it off.
    max_failures: int = Field(default=3, ge=1, le=100)
    # Top-ups per user in any 24 hours; crossings beyond it are skipped (and alerted).
    max_per_day: int = Field(default=5, ge=1, le=100)


@dataclass(frozen=True)
class TopUpView:
    settings: TopUpSettings | None
    setup_url: str = ""


class TopUpStore(Protocol):
    """The statements auto top-up runs: services.billing.topup_store, or a fake in unit tests."""

    async def get_settings(
        self, conn: Connection, user_id: str, *, lock: bool = False
    ) -> TopUpSettings | None: ...
    async def put_settings(
        self, conn: Connection, user_id: str, enabled: bool, threshold: int, pack_id: str
    ) -> TopUpSettings: ...
    async def save_card(
        self, conn: Connection, user_id: str, payment_method_id: str
    ) -> TopUpSettings | None: ...
    async def record_result(
        self, conn: Connection, user_id: str, *, failed: bool, disable_after: int, reason: str
    ) -> TopUpSettings: ...
    async def start_top_up(
        self, conn: Connection, crossing_id: int, user_id: str, pack_id: str
    ) -> tuple[TopUp, bool]: ...
    async def top_ups_today(self, conn: Connection, user_id: str) -> int: ...
    async def bind_top_up(self, conn: Connection, crossing_id: int, order_ref: str) -> None: ...
    async def finish_top_up(
        self,
        conn: Connection,
        crossing_id: int,
        status: str,
        stripe_id: str | None,
        detail: str,
    ) -> bool: ...
    async def enqueue_event(
        self, conn: Connection, event_type: str, user_id: str, data: dict[str, Any]
    ) -> str: ...


class CreditAlerts(Protocol):
    async def set_topup_threshold(self, user_id: str, threshold: int) -> None: ...
    async def raise_alert(self, user_id: str, kind: str, message: str, key: str) -> None: ...


class AlertClient:
    """The credit service's alert RPCs, as billing uses them."""

    def __init__(self, channels: ServiceChannels) -> None:
        self._channels = channels

    @property
    def _stub(self) -> alerts_pb2_grpc.AlertInternalServiceStub:
        return alerts_pb2_grpc.AlertInternalServiceStub(self._channels.channel("credit"))

    async def set_topup_threshold(self, user_id: str, threshold: int) -> None:
        try:
            await self._stub.SetTopUpThreshold(
                alerts_pb2.SetTopUpThresholdRequest(user_id=user_id, threshold=threshold),
                timeout=CREDIT_TIMEOUT_SECONDS,
            )
        except grpc.aio.AioRpcError as err:
            raise domain_error(err) from err

    async def raise_alert(self, user_id: str, kind: str, message: str, key: str) -> None:
        try:
            await self._stub.RaiseAlert(
                alerts_pb2.RaiseAlertRequest(
                    user_id=user_id, kind=kind, message=message, source_key=key
                ),
                timeout=CREDIT_TIMEOUT_SECONDS,
            )
        except grpc.aio.AioRpcError as err:
            raise domain_error(err) from err


class AutoTopUps:
    def __init__(
        self,
        db: Database,
        fulfilment: Fulfilment,
        stripe: StripeApi | None,
        credit: CreditAlerts,
        customer_of: Callable[[Identity], Awaitable[str]],
        config: BillingConfig,
        limits: AutoTopUpConfig,
        records: BillingStore = store,
        top_ups: TopUpStore = topup_store,
    ) -> None:
        self._db = db
        self._fulfilment = fulfilment
        self._stripe = stripe
        self._credit = credit
        self._customer_of = customer_of
        self._config = config
        self._limits = limits
        self._store = records
        self._top_ups = top_ups

    # --- the user's settings ---

    async def get(self, user_id: str) -> TopUpView:
        async with self._db.autocommit() as conn:
            return TopUpView(await self._top_ups.get_settings(conn, user_id))

    async def put(
        self, identity: Identity, *, enabled: bool, threshold: int, pack_id: str
    ) -> TopUpView:
        if not 1 <= threshold <= MAX_THRESHOLD:
            raise InvalidInput(f"threshold must be between 1 and {MAX_THRESHOLD}")
        async with self._db.autocommit() as conn:
            packs = await self._store.list_packs(conn)
        pack = _pack(packs, pack_id)
        user = identity.user_id
        async with self._db.transaction() as conn:
            saved = await self._top_ups.put_settings(conn, user, enabled, threshold, pack.id)
            # Armed or disarmed in the ledger before this commits: a failure leaves both as they
            # were (the request can be repeated).
            await self._credit.set_topup_threshold(user, threshold if saved.armed else 0)
        setup_url = ""
        if enabled and saved.payment_method_id is None:
            setup_url = await self._setup_url(identity)
        return TopUpView(saved, setup_url)

    async def _setup_url(self, identity: Identity) -> str:
        stripe = self._require_stripe()
        customer = await self._customer_of(identity)
        session = await stripe.checkout_setup(
            customer_id=customer,
            user_id=identity.user_id,
            urls=self._config.urls,
            key=f"setup:{identity.user_id}:{new_order_ref()}",
        )
        return str(session.get("url") or "")

    # --- the card saved (webhook checkout.session.completed, mode setup) ---

    async def card_saved(self, conn: Connection, session_id: str) -> bool:
        """Save the card of a completed setup Checkout, as Stripe's API reports the session (its
        customer must be the user's); arms auto top-up if it is enabled. False: not ours."""
        stripe = self._require_stripe()
        session = await stripe.retrieve_setup_checkout(session_id)
        user = (session.get("metadata") or {}).get(META_USER)
        intent = session.get("setup_intent")
        if (
            session.get("mode") != "setup"
            or not isinstance(user, str)
            or not isinstance(intent, dict)
        ):
            return False
        if intent.get("status") != "succeeded" or not intent.get("payment_method"):
            return False
        if await self._store.customer_id(conn, user) != session.get("customer"):
            return False
        saved = await self._top_ups.save_card(conn, user, str(intent["payment_method"]))
        if saved is None:
            return False
        await self._credit.set_topup_threshold(user, saved.threshold if saved.armed else 0)
        log.info("auto top-up card saved", extra={"user_id": user, "armed": saved.armed})
        return True

    # --- a crossing ---

    async def run(self, user_id: str, crossing_id: int) -> tuple[str, str]:
        """The crossing's top-up: (outcome, detail), outcome succeeded / failed / skipped /
        pending (the payment is not confirmed yet; its webhook settles it)."""
        async with self._db.transaction() as conn:
            settings = await self._top_ups.get_settings(conn, user_id, lock=True)
            if settings is None or not settings.armed:
                return "skipped", "auto top-up is off"
            today = await self._top_ups.top_ups_today(conn, user_id)
            top_up, new = await self._top_ups.start_top_up(
                conn, crossing_id, user_id, settings.pack_id
            )
            if not new and top_up.status != "pending":
                return top_up.status, top_up.detail
            if new and today >= self._limits.max_per_day:
                detail = f"daily limit of {self._limits.max_per_day} top-ups reached"
                await self._top_ups.finish_top_up(conn, crossing_id, "skipped", None, detail)
                await self._credit.raise_alert(
                    user_id,
                    "topup.failed",
                    f"Auto top-up skipped: {detail}",
                    f"topup:{crossing_id}",
                )
                await self._top_ups.enqueue_event(
                    conn, "topup.failed", user_id, _data(user_id, crossing_id, detail)
                )
                return "skipped", detail
        return await self._pay(settings, crossing_id, top_up.order_ref)

    async def _pay(
        self, settings: TopUpSettings, crossing_id: int, order_ref: str | None
    ) -> tuple[str, str]:
        stripe = self._require_stripe()
        user = settings.user_id
        async with self._db.autocommit() as conn:
            customer = await self._store.customer_id(conn, user)
            pack = _pack(await self._store.list_packs(conn), settings.pack_id)
        assert settings.payment_method_id is not None
        assert customer is not None
        order = await self._order(user, customer, pack, crossing_id, order_ref)
        try:
            raw = await stripe.charge_off_session(
                customer_id=customer,
                user_id=user,
                pack=pack,
                payment_method_id=settings.payment_method_id,
                order_ref=order.ref,
                key=f"topup:{user}:{crossing_id}",
            )
        except CardDeclined as declined:
            intent = declined.intent or {}
            code = str((intent.get("last_payment_error") or {}).get("code") or "card_declined")
            async with self._db.transaction() as conn:
                if declined.intent:
                    await self._fulfilment.settle(conn, order, intent_payment(declined.intent))
                await self._failed(conn, settings, crossing_id, intent.get("id"), code)
            return "failed", code
        payment = intent_payment(raw)
        async with self._db.transaction() as conn:
            await self._fulfilment.settle(conn, order, payment)
            if payment.status.value != "succeeded":
                return "pending", payment.stripe_status
            if await self._top_ups.finish_top_up(conn, crossing_id, "succeeded", payment.id, ""):
                await self._top_ups.record_result(
                    conn, user, failed=False, disable_after=self._limits.max_failures, reason=""
                )
                data = {**_data(user, crossing_id, ""), "credits": pack.credits}
                data["paymentIntentId"] = payment.id
                await self._top_ups.enqueue_event(conn, "topup.succeeded", user, data)
        log.info("auto top-up paid", extra={"user_id": user, "stripe_id": payment.id})
        return "succeeded", payment.id

    async def _order(
        self, user: str, customer: str, pack: CreditPack, crossing_id: int, ref: str | None
    ) -> Order:
        async with self._db.autocommit() as conn:
            if ref is not None:
                existing = await self._store.order_by_ref(conn, ref)
                if existing is not None:
                    return existing
            order = await self._store.start_order(
                conn,
                Order(
                    ref=new_order_ref(),
                    request_key=f"topup:{user}:{crossing_id}",
                    user_id=user,
                    customer_id=customer,
                    kind=OrderKind.CREDITS,
                    action=OrderAction.INTENT,
                    pack_id=pack.id,
                    plan_id=None,
                    credits=pack.credits,
                    amount_cents=pack.price_cents,
                    currency=pack.currency,
                ),
            )
            await self._top_ups.bind_top_up(conn, crossing_id, order.ref)
        return order

    async def _failed(
        self,
        conn: Connection,
        settings: TopUpSettings,
        crossing_id: int,
        intent_id: object,
        code: str,
    ) -> None:
        user = settings.user_id
        stripe_id = intent_id if isinstance(intent_id, str) else None
        if not await self._top_ups.finish_top_up(conn, crossing_id, "failed", stripe_id, code):
            return
        reason = f"{self._limits.max_failures} top-ups in a row failed ({code})"
        after = await self._top_ups.record_result(
            conn, user, failed=True, disable_after=self._limits.max_failures, reason=reason
        )
        message = (
            "Auto top-up failed: the card was declined"
            if code != "authentication_required"
            else "Auto top-up failed: your bank asks you to authenticate the payment"
        )
        if not after.enabled:
            message += "; auto top-up is now off"
            await self._credit.set_topup_threshold(user, 0)
        await self._credit.raise_alert(user, "topup.failed", message, f"topup:{crossing_id}")
        data = {**_data(user, crossing_id, code), "disabled": not after.enabled}
        await self._top_ups.enqueue_event(conn, "topup.failed", user, data)
        log.warning("auto top-up failed", extra={"user_id": user, "code": code})

    def _require_stripe(self) -> StripeApi:
        if self._stripe is None:
            raise NotConfigured(NOT_CONFIGURED)
        return self._stripe


def _pack(packs: list[CreditPack], pack_id: str) -> CreditPack:
    for pack in packs:
        if pack.id == pack_id:
            return pack
    raise InvalidInput(
        f"Unknown pack: {pack_id[:40]}. Valid packs: {', '.join(p.id for p in packs)}"
    )


def _data(user_id: str, crossing_id: int, reason: str) -> dict[str, Any]:
    data: dict[str, Any] = {"userId": user_id, "crossingId": str(crossing_id)}
    if reason:
        data["reason"] = reason
    return data
