"""The user service layer (services.user.onboarding) against in-memory fakes of its store, the
credit service and billing's catalog: sign-up places a new user on Free once, and a retry finishes
what an interrupted sign-up started."""

from __future__ import annotations

import grpc
import pytest

from services.kit.context import Identity
from services.kit.errors import DomainError, ErrorKind, InvalidInput, NotFound
from services.user.onboarding import Onboarding
from tests.support.fakes.catalog import FakeCatalog
from tests.support.fakes.channels import FakeChannels
from tests.support.fakes.credit import FakeCredit
from tests.support.fakes.db import FakeDatabase
from tests.support.fakes.journal import Journal
from tests.support.fakes.user_store import FakeUserStore

USER = Identity("user_1", email="ada@example.com", name="Ada")


class World:
    def __init__(self) -> None:
        self.journal = Journal()
        self.users = FakeUserStore(self.journal)
        self.credit = FakeCredit(self.journal)
        self.catalog = FakeCatalog(self.journal)
        self.db = FakeDatabase(self.users)
        channels = FakeChannels(credit=self.credit, billing=self.catalog)
        self.onboarding = Onboarding(self.db, channels, self.users)


@pytest.fixture
def world() -> World:
    return World()


async def test_sign_up_places_the_user_on_free_under_the_signup_key(world: World) -> None:
    member = await world.onboarding.initialize(USER, " ada@EXAMPLE.com ", "Ada")

    assert member.created
    assert member.profile.email == "ada@example.com"
    assert (member.standing.plan_id, member.standing.current_credits) == ("free", 10)
    (placement,) = world.credit.requests("SetPlan")
    assert placement.idempotency_key == "signup:user_1"
    assert placement.start_new_period
    assert placement.terms.plan_name == "free"
    assert placement.terms.monthly_allowance == 10
    assert list(placement.terms.features) == ["image_analysis"]
    assert world.users.profiles["user_1"].credits_ready


async def test_profile_is_marked_ready_only_after_the_plan_is_placed(world: World) -> None:
    await world.onboarding.initialize(USER, "ada@example.com", None)

    assert world.journal.in_order(
        "users.create_or_get", "billing.GetPlan", "credit.SetPlan", "users.mark_credits_ready"
    )


async def test_a_failed_placement_leaves_the_profile_not_ready(world: World) -> None:
    world.credit.fail("SetPlan")

    with pytest.raises(DomainError) as raised:
        await world.onboarding.initialize(USER, "ada@example.com", None)

    assert raised.value.kind is ErrorKind.UNAVAILABLE
    assert "user_1" in world.users.profiles
    assert not world.users.profiles["user_1"].credits_ready
    assert "users.mark_credits_ready" not in world.journal.events


async def test_a_retry_after_a_lost_answer_finishes_the_sign_up_with_one_grant(
    world: World,
) -> None:
    # The credit service placed the plan but its answer never came back.
    world.credit.fail("SetPlan", code=grpc.StatusCode.DEADLINE_EXCEEDED, after_applying=True)
    with pytest.raises(DomainError):
        await world.onboarding.initialize(USER, "ada@example.com", None)

    member = await world.onboarding.initialize(USER, "ada@example.com", None)

    assert not member.created  # the profile was made by the first call
    assert member.standing.current_credits == 10
    assert world.credit.balance("user_1") == 10
    assert world.credit.keys("user_1") == ["signup:user_1:grant"]
    assert world.users.profiles["user_1"].credits_ready


async def test_a_second_initialize_places_nothing_again(world: World) -> None:
    await world.onboarding.initialize(USER, "ada@example.com", None)
    world.credit.calls.clear()

    member = await world.onboarding.initialize(USER, "ada@example.com", None)

    assert not member.created
    assert world.credit.requests("SetPlan") == []
    assert member.standing.current_credits == 10


async def test_me_signs_up_a_user_who_never_called_initialize(world: World) -> None:
    member = await world.onboarding.me(USER)

    assert member.created
    assert member.profile.email == "ada@example.com"
    assert world.credit.balance("user_1") == 10


async def test_me_of_a_ready_user_only_reads(world: World) -> None:
    await world.onboarding.initialize(USER, "ada@example.com", None)
    world.journal.clear()

    member = await world.onboarding.me(USER)

    assert not member.created
    assert world.journal.events == ["credit.GetAccount", "billing.GetPlan"]


async def test_standing_shows_the_accounts_terms_when_the_catalog_dropped_the_plan(
    world: World,
) -> None:
    await world.onboarding.initialize(USER, "ada@example.com", None)
    del world.catalog.plans["free"]

    member = await world.onboarding.get("user_1")

    assert (member.standing.plan_id, member.standing.plan_name) == ("free", "free")
    assert member.standing.monthly_credits == 10


async def test_unknown_user_is_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        await world.onboarding.get("user_nobody")


async def test_invalid_email_is_refused_before_anything_is_written(world: World) -> None:
    with pytest.raises(InvalidInput):
        await world.onboarding.initialize(USER, "not an email", None)

    assert world.users.profiles == {}
    assert world.journal.events == []
