"""Billing's service layer (services.billing.payments, plan_changes, fulfilment, webhooks) against
in-memory fakes of its stores, Stripe and the credit service: an order is recorded before Stripe is
called, credits are granted once per payment whichever path reports it, an event is only a trigger
(what it names is read back from Stripe), a webhook's record commits with its effect, money Stripe
takes back takes its credits back, and the account follows the subscription Stripe keeps."""

from __future__ import annotations

from typing import Any

import pytest

from devstack.stripe_emulator import body_of, sign
from services.billing.config import BillingConfig
from services.billing.domain import PaymentStatus
from services.billing.fulfilment import Fulfilment, Ledger
from services.billing.orders import Orders
from services.billing.payments import Billing, PurchaseStarted
from services.billing.plan_changes import PlanChanges
from services.billing.stripe_api import CardDeclined
from services.billing.webhooks import Webhooks
from services.kit.context import Identity
from services.kit.errors import DomainError, ErrorKind, InvalidInput, InvalidState, NotFound
from tests.support.fakes.billing_store import FakeBillingStore
from tests.support.fakes.channels import FakeChannels
from tests.support.fakes.credit import FakeCredit
from tests.support.fakes.db import FakeDatabase
from tests.support.fakes.journal import Journal
from tests.support.fakes.stripe import DECLINED_CARD, FakeStripe

SECRET = "whsec_unit"
ADA = Identity("user_ada", email="ada@example.com")
PRO_PRICE = "price_pro"


class World:
    def __init__(self) -> None:
        self.journal = Journal()
        self.records = FakeBillingStore(self.journal)
        self.credit = FakeCredit(self.journal)
        self.credit.open_account(ADA.user_id, allowance=10)
        self.stripe = FakeStripe(self.journal)
        self.db = FakeDatabase(self.records)
        config = BillingConfig(webhook_secret=SECRET, plan_prices={"pro": PRO_PRICE})
        ledger = Ledger(FakeChannels(credit=self.credit))
        fulfilment = Fulfilment(self.db, ledger, self.stripe, config, self.records, self.records)
        orders = Orders(self.db, fulfilment, self.stripe, self.records)
        self.billing = Billing(
            self.db, ledger, fulfilment, orders, config, self.records, self.records
        )
        self.plans = PlanChanges(self.db, ledger, orders, config, self.records)
        self.webhooks = Webhooks(self.db, fulfilment, config, self.records)

    def balance(self) -> int:
        return self.credit.balance(ADA.user_id)

    async def checkout(self, pack_id: str = "credits_50", key: str | None = None) -> str:
        started = await self.buy(pack_id=pack_id, key=key)
        return started.session_id

    async def buy(
        self, *, pack_id: str = "credits_50", card: str = "", key: str | None = None
    ) -> PurchaseStarted:
        return await self.billing.purchase_credits(
            ADA, pack_id=pack_id, credits=0, payment_method_id=card, client_key=key
        )

    async def deliver(self, event_type: str, obj: dict[str, Any]) -> bool:
        return await self.deliver_event(self.stripe.event(event_type, obj))

    async def deliver_event(self, event: dict[str, Any]) -> bool:
        payload = body_of(event)
        return await self.webhooks.handle(payload, sign(payload, SECRET))

    async def paid_purchase(self) -> tuple[str, str]:
        """A Checkout purchase of 50 credits, paid and reported; (session, its PaymentIntent)."""
        session_id = await self.checkout()
        session = self.stripe.pay_checkout(session_id)
        await self.deliver("checkout.session.completed", session)
        return session_id, session["payment_intent"]

    def outcome(self, event: dict[str, Any]) -> str | None:
        return self.records.events[event["id"]][1]


@pytest.fixture
def world() -> World:
    return World()


# --- purchases ---


async def test_a_purchase_is_recorded_as_an_order_before_stripe_is_called(world: World) -> None:
    started = await world.buy()

    assert started.status == "open"
    assert started.checkout_url.endswith(started.session_id)
    assert world.journal.in_order(
        "billing.start_order", "stripe.checkout_credits", "billing.bind_order"
    )
    (order,) = world.records.orders.values()
    assert (order.user_id, order.credits, order.amount_cents) == (ADA.user_id, 50, 2000)
    assert order.stripe_id == started.session_id
    assert world.records.payments[started.session_id].status is PaymentStatus.PENDING
    assert world.credit.requests("Grant") == []  # nothing before Stripe says it is paid


async def test_a_user_without_a_credit_account_is_refused_before_stripe(world: World) -> None:
    del world.credit.accounts[ADA.user_id]

    with pytest.raises(NotFound):
        await world.buy()

    assert not any(e.startswith("stripe.") for e in world.journal.events)
    assert world.records.orders == {}


async def test_an_unknown_pack_is_refused_naming_the_valid_ones(world: World) -> None:
    with pytest.raises(InvalidInput) as refused:
        await world.buy(pack_id="credits_7")

    assert "credits_10" in refused.value.message
    assert world.journal.events == []


async def test_a_repeated_key_reports_the_same_checkout(world: World) -> None:
    first = await world.checkout(key="k1")
    again = await world.checkout(key="k1")

    assert again == first
    assert world.journal.count("stripe.checkout_credits") == 1
    assert len(world.records.orders) == 1


async def test_a_key_reused_for_another_pack_is_refused(world: World) -> None:
    await world.checkout(key="k1")

    with pytest.raises(InvalidInput):
        await world.checkout(pack_id="credits_10", key="k1")

    assert world.journal.count("stripe.checkout_credits") == 1


async def test_a_replay_after_payment_grants_once_with_the_webhook(world: World) -> None:
    session_id = await world.checkout(key="k1")
    session = world.stripe.pay_checkout(session_id)

    replay = await world.buy(key="k1")
    await world.deliver("checkout.session.completed", session)

    assert replay.status == "paid"
    assert world.balance() == 10 + 50
    assert world.credit.keys(ADA.user_id, "grant") == [f"stripe:checkout:{session_id}"]
    assert world.records.payments[session_id].status is PaymentStatus.SUCCEEDED


async def test_a_saved_card_is_charged_and_granted_at_once(world: World) -> None:
    started = await world.buy(card="pm_card_visa")

    assert started.status == "succeeded"
    assert world.balance() == 60
    assert world.credit.keys(ADA.user_id, "grant") == [f"stripe:pi:{started.payment_intent_id}"]


async def test_a_declined_card_grants_nothing_and_records_the_failure(world: World) -> None:
    with pytest.raises(CardDeclined):
        await world.buy(card=DECLINED_CARD)

    (payment,) = world.records.payments.values()
    assert payment.status is PaymentStatus.FAILED
    assert world.balance() == 10


async def test_money_taken_while_credit_is_down_is_granted_by_the_webhook(world: World) -> None:
    world.credit.fail("Grant")

    started = await world.buy(card="pm_card_visa")  # no error: the money is taken

    assert started.status == "succeeded"
    assert world.balance() == 10
    intent = await world.stripe.retrieve_intent(started.payment_intent_id)
    await world.deliver("payment_intent.succeeded", intent)
    await world.deliver("payment_intent.succeeded", intent)
    assert world.balance() == 60


# --- webhooks ---


async def test_checkout_completion_grants_the_orders_credits_once(world: World) -> None:
    session_id = await world.checkout()
    session = world.stripe.pay_checkout(session_id)
    event = world.stripe.event("checkout.session.completed", session)

    assert await world.deliver_event(event)
    assert not await world.deliver_event(event)  # the same event again
    await world.deliver("checkout.session.async_payment_succeeded", session)  # another path

    assert world.balance() == 60
    # Both paths ask under the payment's key, so the ledger grants once.
    grants = world.credit.requests("Grant")
    assert {(g.user_id, g.amount, g.idempotency_key) for g in grants} == {
        (ADA.user_id, 50, f"stripe:checkout:{session_id}")
    }
    assert world.credit.keys(ADA.user_id, "grant") == [f"stripe:checkout:{session_id}"]


async def test_an_event_is_a_trigger_and_stripe_is_asked(world: World) -> None:
    session_id = await world.checkout()
    claimed = await world.stripe.retrieve_checkout(session_id)
    claimed.update(status="complete", payment_status="paid")  # says paid; Stripe says open

    assert await world.deliver("checkout.session.completed", claimed)

    assert world.balance() == 10
    assert world.records.payments[session_id].status is PaymentStatus.PENDING


async def test_a_session_no_order_of_ours_started_is_refused(world: World) -> None:
    foreign = world.stripe._session("payment", "cus_x", {}, amount_total=2000, currency="usd")
    world.stripe.objects[foreign["id"]] = foreign
    event = world.stripe.event(
        "checkout.session.completed", world.stripe.pay_checkout(foreign["id"])
    )

    assert await world.deliver_event(event)  # acknowledged, so Stripe stops retrying

    assert world.outcome(event) == "refused"
    assert world.records.payments == {}
    assert world.credit.requests("Grant") == []


async def test_a_payment_of_another_amount_is_refused(world: World) -> None:
    session_id = await world.checkout()
    world.stripe.objects[session_id]["amount_total"] = 500
    event = world.stripe.event("checkout.session.completed", world.stripe.pay_checkout(session_id))

    await world.deliver_event(event)

    assert world.outcome(event) == "refused"
    assert world.balance() == 10


async def test_a_failed_effect_rolls_back_the_event_record_for_stripes_retry(
    world: World,
) -> None:
    session_id = await world.checkout()
    event = world.stripe.event("checkout.session.completed", world.stripe.pay_checkout(session_id))
    world.credit.fail("Grant")

    with pytest.raises(DomainError) as failed:
        await world.deliver_event(event)

    assert failed.value.kind is ErrorKind.UNAVAILABLE
    assert event["id"] not in world.records.events
    assert world.records.payments[session_id].status is PaymentStatus.PENDING

    assert await world.deliver_event(event)  # Stripe's retry
    assert world.balance() == 60


async def test_unknown_event_types_are_acknowledged_as_ignored(world: World) -> None:
    event = world.stripe.event("customer.created", {"id": "cus_1", "object": "customer"})

    assert await world.deliver_event(event)

    assert world.outcome(event) == "ignored"


async def test_an_unsigned_event_changes_nothing(world: World) -> None:
    payload = body_of(world.stripe.event("customer.created", {"id": "cus_1"}))

    with pytest.raises(InvalidInput):
        await world.webhooks.handle(payload, sign(payload, "whsec_someone_else"))

    assert world.records.events == {}


# --- money taken back ---


async def test_a_refund_takes_back_credits_in_proportion_once(world: World) -> None:
    _, intent = await world.paid_purchase()
    charge = world.stripe.refund_part(intent, 1000)  # half of $20

    await world.deliver("charge.refunded", charge)
    await world.deliver("charge.refunded", charge)  # reported again

    assert world.balance() == 60 - 25
    grant = world.credit.entry(ADA.user_id, world.credit.keys(ADA.user_id, "grant")[0])
    assert grant is not None
    assert grant.clawed == 25
    payment = next(iter(world.records.payments.values()))
    assert (payment.refunded_cents, payment.clawed_credits) == (1000, 25)


async def test_a_won_dispute_gives_the_credits_back(world: World) -> None:
    _, intent = await world.paid_purchase()
    dispute = world.stripe.dispute(intent, 2000)
    await world.deliver("charge.dispute.created", dispute)
    assert world.balance() == 10

    world.stripe.disputes[intent][0]["status"] = "won"
    await world.deliver("charge.dispute.closed", dispute)

    assert world.balance() == 60


# --- subscriptions ---


async def test_the_account_follows_the_paid_subscription(world: World) -> None:
    world.records.add_customer_now(ADA.user_id, "cus_ada")
    sub = world.stripe.subscribe("cus_ada", plan_id="pro", price_id=PRO_PRICE, price_cents=2900)

    await world.deliver("customer.subscription.created", sub)
    await world.deliver("customer.subscription.updated", sub)  # nothing new: placed once

    (placed,) = world.credit.requests("SetPlan")
    assert (placed.terms.plan_name, placed.terms.monthly_allowance) == ("pro", 100)
    assert placed.start_new_period
    assert world.balance() == 100
    assert world.records.customers[ADA.user_id].plan_id == "pro"


async def test_an_unpaid_period_keeps_the_plan_without_allowance(world: World) -> None:
    world.records.add_customer_now(ADA.user_id, "cus_ada")
    sub = world.stripe.subscribe(
        "cus_ada", plan_id="pro", price_id=PRO_PRICE, price_cents=2900, paid=False
    )

    await world.deliver("customer.subscription.created", sub)

    (placed,) = world.credit.requests("SetPlan")
    assert (placed.terms.plan_name, placed.terms.monthly_allowance) == ("pro", 0)
    assert placed.idempotency_key.endswith(":unpaid")
    assert "video_generation" in placed.terms.features


async def test_a_subscription_at_another_price_places_nothing(world: World) -> None:
    world.records.add_customer_now(ADA.user_id, "cus_ada")
    sub = world.stripe.subscribe("cus_ada", plan_id="pro", price_id="price_cheap", price_cents=100)

    await world.deliver("customer.subscription.created", sub)

    assert world.credit.requests("SetPlan") == []


async def test_a_second_paid_subscription_is_cancelled_and_refunded(world: World) -> None:
    world.records.add_customer_now(ADA.user_id, "cus_ada")
    kept = world.stripe.subscribe(
        "cus_ada", plan_id="pro", price_id=PRO_PRICE, price_cents=2900, created=1_700_000_000
    )
    extra = world.stripe.subscribe(
        "cus_ada", plan_id="pro", price_id=PRO_PRICE, price_cents=2900, created=1_700_000_100
    )

    await world.deliver("customer.subscription.created", extra)

    assert world.stripe.objects[extra["id"]]["status"] == "canceled"
    assert world.stripe.objects[kept["id"]]["status"] == "active"
    assert world.journal.in_order("stripe.cancel_subscription", "stripe.refund")
    refunded = world.records.payments[extra["latest_invoice"]]
    assert refunded.status is PaymentStatus.REFUNDED
    assert world.records.customers[ADA.user_id].subscription_id == kept["id"]


# --- plan changes ---


async def test_going_free_without_a_subscription_is_refused(world: World) -> None:
    with pytest.raises(InvalidState):
        await world.plans.change_plan(ADA, "free", None)


async def test_an_upgrade_opens_one_checkout_and_reuses_it(world: World) -> None:
    first = await world.plans.change_plan(ADA, "pro", None)
    second = await world.plans.change_plan(ADA, "Pro", None)

    assert (first.status, second.status) == ("checkout", "checkout")
    assert second.session_id == first.session_id
    assert world.journal.count("stripe.checkout_subscription") == 1
    assert world.journal.in_order("billing.start_order", "stripe.checkout_subscription")
    assert world.credit.requests("SetPlan") == []  # nothing until Stripe confirms
