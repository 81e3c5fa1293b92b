"""What billing's service layer (payments, plan changes, fulfilment, webhooks) needs from its
stores: the statements of services.billing.store (BillingStore) and services.billing.payment_store
(PaymentStore), each of which satisfies its Protocol as a module; unit tests give an in-memory fake
instead."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from services.billing.domain import (
    CreditPack,
    Order,
    OrderAction,
    Payment,
    PaymentKind,
    PaymentStatus,
    Plan,
)
from services.billing.plan_rules import PlanPlacement, Subscription
from services.billing.store import Placement
from services.kit.sql import Connection


class BillingStore(Protocol):
    async def list_plans(self, conn: Connection) -> list[Plan]: ...

    async def get_plan(self, conn: Connection, plan_id: str) -> Plan | None: ...

    async def list_packs(self, conn: Connection) -> list[CreditPack]: ...

    async def customer_id(self, conn: Connection, user_id: str) -> str | None: ...

    async def add_customer(
        self, conn: Connection, user_id: str, stripe_customer_id: str
    ) -> str: ...

    async def user_of_customer(self, conn: Connection, stripe_customer_id: str) -> str | None: ...

    async def lock_placement(self, conn: Connection, user_id: str) -> Placement | None: ...

    async def record_placement(
        self, conn: Connection, user_id: str, placement: PlanPlacement, changes: int
    ) -> None: ...

    async def lock_plan_changes(self, conn: Connection, user_id: str) -> None: ...

    async def start_order(self, conn: Connection, order: Order) -> Order: ...

    async def bind_order(
        self,
        conn: Connection,
        ref: str,
        stripe_id: str,
        action: OrderAction | None = None,
    ) -> None: ...

    async def order_by_request_key(self, conn: Connection, request_key: str) -> Order | None: ...

    async def order_by_ref(self, conn: Connection, ref: str) -> Order | None: ...

    async def credit_order_of(self, conn: Connection, stripe_id: str) -> Order | None: ...

    async def lock_order(self, conn: Connection, ref: str) -> None: ...

    async def save_subscription(
        self, conn: Connection, user_id: str, sub: Subscription
    ) -> None: ...

    async def record_event(
        self, conn: Connection, event_id: str, kind: str, created: datetime
    ) -> bool: ...

    async def record_outcome(self, conn: Connection, event_id: str, outcome: str) -> None: ...


class PaymentStore(Protocol):
    async def save_payment(
        self,
        conn: Connection,
        *,
        user_id: str,
        stripe_id: str,
        kind: PaymentKind,
        status: PaymentStatus,
        amount_cents: int,
        currency: str,
        credits: int = 0,
        pack_id: str | None = None,
        plan_id: str | None = None,
        grant_key: str | None = None,
    ) -> None: ...

    async def payment_of(self, conn: Connection, stripe_id: str) -> Payment | None: ...

    async def record_money_back(
        self,
        conn: Connection,
        stripe_id: str,
        *,
        refunded_cents: int,
        dispute_status: str | None,
        clawed_credits: int,
    ) -> None: ...

    async def list_payments(
        self, conn: Connection, user_id: str, *, limit: int, before_id: int | None
    ) -> Sequence[Payment]: ...
