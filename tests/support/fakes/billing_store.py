"""services.billing.store and services.billing.payment_store in memory: the catalog, customers and
what was placed on their accounts, orders, the subscription mirror, payments (whose status only
moves forward) and processed webhook events."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from services.billing.domain import (
    STATUS_ORDER,
    CreditPack,
    Order,
    OrderAction,
    OrderKind,
    Payment,
    PaymentKind,
    PaymentStatus,
    Plan,
)
from services.billing.plan_rules import PlanPlacement, Subscription
from services.billing.store import Placement
from services.kit.sql import Connection
from tests.support.fakes.journal import Journal

FEATURES = ("image_analysis", "video_generation", "advanced_editing")
PLANS = [
    Plan("free", "Free", 0, "usd", "month", 10, False, ("image_analysis",)),
    Plan("pro", "Pro", 2900, "usd", "month", 100, False, FEATURES),
    Plan("enterprise", "Enterprise", 9900, "usd", "month", 0, True, FEATURES),
]
PACKS = [
    CreditPack("credits_10", "10 credits", 10, 500, "usd"),
    CreditPack("credits_50", "50 credits", 50, 2000, "usd"),
]


@dataclass
class _Customer:
    customer_id: str
    plan_id: str | None = None
    period_start: datetime | None = None
    changes: int = 0
    paid: bool = True
    subscription_id: str | None = None


class FakeBillingStore:
    def __init__(self, journal: Journal | None = None) -> None:
        self.journal = journal or Journal()
        self.plans = list(PLANS)
        self.packs = list(PACKS)
        self.customers: dict[str, _Customer] = {}
        self.orders: dict[str, Order] = {}
        self.subscriptions: dict[str, tuple[str, Subscription]] = {}
        self.payments: dict[str, Payment] = {}
        self.events: dict[str, tuple[str, str | None]] = {}

    def snapshot(self) -> Any:
        return copy.deepcopy(self.__dict__)

    def restore(self, state: Any) -> None:
        self.__dict__.update(state)

    def add_customer_now(self, user_id: str, customer_id: str) -> None:
        """A user whose Stripe customer is already recorded (test set-up)."""
        self.customers[user_id] = _Customer(customer_id)

    # --- catalog ---

    async def list_plans(self, conn: Connection) -> list[Plan]:
        return list(self.plans)

    async def get_plan(self, conn: Connection, plan_id: str) -> Plan | None:
        return next((p for p in self.plans if p.id == plan_id), None)

    async def list_packs(self, conn: Connection) -> list[CreditPack]:
        return list(self.packs)

    # --- customers and placements ---

    async def customer_id(self, conn: Connection, user_id: str) -> str | None:
        found = self.customers.get(user_id)
        return found.customer_id if found else None

    async def add_customer(self, conn: Connection, user_id: str, stripe_customer_id: str) -> str:
        self.journal.add("billing.add_customer")
        return self.customers.setdefault(user_id, _Customer(stripe_customer_id)).customer_id

    async def user_of_customer(self, conn: Connection, stripe_customer_id: str) -> str | None:
        return next(
            (u for u, c in self.customers.items() if c.customer_id == stripe_customer_id), None
        )

    async def lock_placement(self, conn: Connection, user_id: str) -> Placement | None:
        found = self.customers.get(user_id)
        if found is None:
            return None
        return Placement(
            found.customer_id,
            found.plan_id,
            found.period_start,
            found.changes,
            found.paid,
            found.subscription_id,
        )

    async def record_placement(
        self, conn: Connection, user_id: str, placement: PlanPlacement, changes: int
    ) -> None:
        self.journal.add("billing.record_placement")
        customer = self.customers[user_id]
        customer.plan_id, customer.period_start = placement.plan_id, placement.period_start
        customer.changes, customer.paid = changes, placement.paid
        customer.subscription_id = placement.subscription_id

    async def lock_plan_changes(self, conn: Connection, user_id: str) -> None:
        return None

    # --- orders ---

    async def start_order(self, conn: Connection, order: Order) -> Order:
        self.journal.add("billing.start_order")
        for recorded in self.orders.values():
            if recorded.request_key == order.request_key:
                return recorded
        self.orders[order.ref] = order
        return order

    async def bind_order(
        self,
        conn: Connection,
        ref: str,
        stripe_id: str,
        action: OrderAction | None = None,
    ) -> None:
        self.journal.add("billing.bind_order")
        order = self.orders[ref]
        if order.stripe_id in (None, stripe_id):
            self.orders[ref] = replace(order, stripe_id=stripe_id, action=action or order.action)

    async def order_by_request_key(self, conn: Connection, request_key: str) -> Order | None:
        return next((o for o in self.orders.values() if o.request_key == request_key), None)

    async def order_by_ref(self, conn: Connection, ref: str) -> Order | None:
        return self.orders.get(ref)

    async def credit_order_of(self, conn: Connection, stripe_id: str) -> Order | None:
        return next(
            (
                o
                for o in self.orders.values()
                if o.stripe_id == stripe_id and o.kind is OrderKind.CREDITS
            ),
            None,
        )

    async def lock_order(self, conn: Connection, ref: str) -> None:
        return None

    # --- subscriptions and payments ---

    async def save_subscription(self, conn: Connection, user_id: str, sub: Subscription) -> None:
        self.subscriptions[sub.id] = (user_id, sub)

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
    ) -> None:
        self.journal.add(f"billing.save_payment:{status.value}")
        found = self.payments.get(stripe_id)
        if found is None:
            self.payments[stripe_id] = Payment(
                id=len(self.payments) + 1,
                user_id=user_id,
                stripe_id=stripe_id,
                kind=kind,
                status=status,
                amount_cents=amount_cents,
                currency=currency,
                credits=credits,
                plan_id=plan_id,
                created_at=datetime.now(UTC),
            )
            return
        forward = STATUS_ORDER.index(found.status) < STATUS_ORDER.index(status)
        self.payments[stripe_id] = replace(
            found,
            status=status if forward else found.status,
            amount_cents=amount_cents if amount_cents > 0 else found.amount_cents,
            plan_id=plan_id or found.plan_id,
        )

    async def payment_of(self, conn: Connection, stripe_id: str) -> Payment | None:
        return self.payments.get(stripe_id)

    async def record_money_back(
        self,
        conn: Connection,
        stripe_id: str,
        *,
        refunded_cents: int,
        dispute_status: str | None,
        clawed_credits: int,
    ) -> None:
        self.payments[stripe_id] = replace(
            self.payments[stripe_id],
            refunded_cents=refunded_cents,
            dispute_status=dispute_status,
            clawed_credits=clawed_credits,
        )

    async def list_payments(
        self, conn: Connection, user_id: str, *, limit: int, before_id: int | None
    ) -> Sequence[Payment]:
        mine = sorted(
            (p for p in self.payments.values() if p.user_id == user_id),
            key=lambda p: -p.id,
        )
        return [p for p in mine if before_id is None or p.id < before_id][:limit]

    # --- webhook events ---

    async def record_event(
        self, conn: Connection, event_id: str, kind: str, created: datetime
    ) -> bool:
        if event_id in self.events:
            return False
        self.events[event_id] = (kind, None)
        return True

    async def record_outcome(self, conn: Connection, event_id: str, outcome: str) -> None:
        self.events[event_id] = (self.events[event_id][0], outcome)
