"""Auto top-up's service layer (services.billing.autotopup) against in-memory fakes of its stores,
Stripe and the credit service: one PaymentIntent per crossing, credits only from the confirmed
payment (the purchase path), failures counted until auto top-up turns itself off with an alert, a
daily cap, and a card saved only from a setup Checkout of the user's own customer."""

from __future__ import annotations

from dataclasses import replace

import pytest

from services.billing.autotopup import AutoTopUpConfig, AutoTopUps
from services.billing.config import BillingConfig
from services.billing.fulfilment import Fulfilment, Ledger
from services.billing.orders import Orders
from services.kit.context import Identity
from services.kit.errors import DomainError, ErrorKind, InvalidInput
from tests.support.fakes.billing_store import FakeBillingStore
from tests.support.fakes.channels import FakeChannels
from tests.support.fakes.credit import FakeCredit
from tests.support.fakes.db import FakeDatabase
from tests.support.fakes.journal import Journal
from tests.support.fakes.stripe import AUTHENTICATED_CARD, DECLINED_CARD, FakeStripe
from tests.support.fakes.topup_store import FakeTopUpStore

ADA = Identity("user_ada", email="ada@example.com")
EVE = Identity("user_eve", email="eve@example.com")


class FakeAlerts:
    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.thresholds: dict[str, int] = {}
        self.alerts: dict[str, tuple[str, str, str]] = {}

    async def set_topup_threshold(self, user_id: str, threshold: int) -> None:
        self.thresholds[user_id] = threshold

    async def raise_alert(self, user_id: str, kind: str, message: str, key: str) -> None:
        self.alerts.setdefault(key, (user_id, kind, message))
        self.journal.add(f"alert.{kind}")


class World:
    def __init__(self, max_failures: int = 2, max_per_day: int = 5) -> None:
        self.journal = Journal()
        self.records = FakeBillingStore(self.journal)
        self.store = FakeTopUpStore(self.journal)
        self.credit = FakeCredit(self.journal)
        self.credit.open_account(ADA.user_id, allowance=10)
        self.stripe = FakeStripe(self.journal)
        self.db = FakeDatabase(self.records, self.store)
        self.alerts = FakeAlerts(self.journal)
        config = BillingConfig()
        ledger = Ledger(FakeChannels(credit=self.credit))
        fulfilment = Fulfilment(self.db, ledger, self.stripe, config, self.records, self.records)
        orders = Orders(self.db, fulfilment, self.stripe, self.records)
        self.top_ups = AutoTopUps(
            self.db,
            fulfilment,
            self.stripe,
            self.alerts,
            orders.customer,
            config,
            AutoTopUpConfig(max_failures=max_failures, max_per_day=max_per_day),
            self.records,
            self.store,
        )

    async def enable(self, card: str = "pm_card_visa", who: Identity = ADA) -> None:
        view = await self.top_ups.put(who, enabled=True, threshold=5, pack_id="credits_50")
        assert view.setup_url
        session = self.stripe.save_card(view.setup_url.rsplit("/", 1)[1], card)
        async with self.db.transaction() as conn:
            assert await self.top_ups.card_saved(conn, session["id"])

    def events(self) -> list[str]:
        return [kind for kind, _, _ in self.store.events]


@pytest.fixture
def world() -> World:
    return World()


async def test_a_crossing_buys_the_pack_once_and_grants_on_the_confirmed_payment(
    world: World,
) -> None:
    await world.enable()
    assert world.alerts.thresholds[ADA.user_id] == 5  # armed once the card is saved
    before = world.credit.balance(ADA.user_id)
    assert await world.top_ups.run(ADA.user_id, 7) == ("succeeded", "pi_000004")
    # The same crossing again (a retry, a second scheduler): the same answer, nothing new.
    assert (await world.top_ups.run(ADA.user_id, 7))[0] == "succeeded"
    assert world.credit.balance(ADA.user_id) == before + 50
    assert world.journal.count("stripe.charge_off_session") == 1
    assert world.events() == ["topup.succeeded"]
    assert world.store.events[0][2]["credits"] == 50


async def test_a_payment_whose_grant_was_lost_is_finished_by_the_retry(world: World) -> None:
    await world.enable()
    # The grant is applied but its answer lost: the whole top-up transaction rolls back.
    world.credit.fail("Grant", after_applying=True)
    with pytest.raises(DomainError) as lost:
        await world.top_ups.run(ADA.user_id, 8)
    assert lost.value.kind is ErrorKind.UNAVAILABLE
    before = world.credit.balance(ADA.user_id)
    assert world.events() == []
    assert (await world.top_ups.run(ADA.user_id, 8))[0] == "succeeded"
    assert world.journal.count("stripe.charge_off_session") == 2  # same key: one PaymentIntent
    intents = [o for o in world.stripe.objects.values() if o["object"] == "payment_intent"]
    assert len(intents) == 1
    assert world.credit.balance(ADA.user_id) == before  # granted once, by the first call
    assert world.events() == ["topup.succeeded"]


async def test_failures_turn_auto_top_up_off_with_an_alert(world: World) -> None:
    await world.enable(card=DECLINED_CARD)
    balance = world.credit.balance(ADA.user_id)
    assert await world.top_ups.run(ADA.user_id, 1) == ("failed", "card_declined")
    assert world.store.settings[ADA.user_id].enabled
    # The card now asks for authentication, which cannot happen off-session.
    world.store.settings[ADA.user_id] = replace(
        world.store.settings[ADA.user_id], payment_method_id=AUTHENTICATED_CARD
    )
    assert await world.top_ups.run(ADA.user_id, 2) == ("failed", "authentication_required")
    settings = world.store.settings[ADA.user_id]
    assert not settings.enabled
    assert "authentication_required" in settings.disabled_reason
    assert world.alerts.thresholds[ADA.user_id] == 0  # disarmed in the ledger
    assert [kind for _, kind, _ in world.alerts.alerts.values()] == ["topup.failed"] * 2
    assert "now off" in world.alerts.alerts["topup:2"][2]
    assert world.events() == ["topup.failed", "topup.failed"]
    assert world.credit.balance(ADA.user_id) == balance
    # Off: the next crossing buys nothing.
    assert (await world.top_ups.run(ADA.user_id, 3))[0] == "skipped"
    assert world.journal.count("stripe.charge_off_session") == 2


async def test_never_more_top_ups_a_day_than_configured() -> None:
    world = World(max_per_day=2)
    await world.enable()
    outcomes = [(await world.top_ups.run(ADA.user_id, c))[0] for c in (1, 2, 3)]
    assert outcomes == ["succeeded", "succeeded", "skipped"]
    assert world.journal.count("stripe.charge_off_session") == 2
    assert world.events() == ["topup.succeeded", "topup.succeeded", "topup.failed"]


async def test_settings_are_checked_and_another_users_card_is_refused(world: World) -> None:
    for threshold, pack in ((0, "credits_50"), (-5, "credits_50"), (10**9, "credits_50")):
        with pytest.raises(InvalidInput):
            await world.top_ups.put(ADA, enabled=True, threshold=threshold, pack_id=pack)
    with pytest.raises(InvalidInput, match="Unknown pack"):
        await world.top_ups.put(ADA, enabled=True, threshold=5, pack_id="credits_7")
    assert world.store.settings == {}
    # Eve's setup session cannot give Ada a card: the session's customer must be Ada's.
    world.credit.open_account(EVE.user_id, allowance=10)
    await world.top_ups.put(ADA, enabled=True, threshold=5, pack_id="credits_50")
    eve = await world.top_ups.put(EVE, enabled=True, threshold=5, pack_id="credits_50")
    session = world.stripe.save_card(eve.setup_url.rsplit("/", 1)[1])
    session_meta = world.stripe.objects[session["id"]]["metadata"]
    session_meta["studiox_user_id"] = ADA.user_id  # as if forged
    async with world.db.transaction() as conn:
        assert not await world.top_ups.card_saved(conn, session["id"])
    assert world.store.settings[ADA.user_id].payment_method_id is None
