"""Service layer of the user service: profile creation and plan placement, across the user table and
the billing/credit services. Each step is idempotent, so any retry (or a later /me) finishes what an
earlier, interrupted call started."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from services.billing.client import BillingClient
from services.billing.domain import Plan
from services.credit.client import AccountSummary, CreditClient
from services.credit.domain import PlanTerms
from services.kit.clients import ServiceChannels
from services.kit.context import Identity
from services.kit.db import Database
from services.kit.errors import NotFound
from services.kit.sql import Connection
from services.user import store
from services.user.domain import SIGNUP_PLAN, Profile, clean_email, clean_name, signup_key

DOWNSTREAM_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Standing:
    """The user's plan and credits as billing's catalog and the credit ledger have them."""

    plan_id: str
    plan_name: str
    monthly_credits: int
    is_unlimited: bool
    current_credits: int
    credit_reset_at: datetime


@dataclass(frozen=True)
class Member:
    profile: Profile
    standing: Standing
    created: bool


class UserStore(Protocol):
    """The statements this layer runs: services.user.store, or a fake in unit tests."""

    async def get(self, conn: Connection, user_id: str) -> Profile | None: ...

    async def create_or_get(
        self, conn: Connection, user_id: str, email: str | None, name: str | None
    ) -> tuple[Profile, bool]: ...

    async def mark_credits_ready(self, conn: Connection, user_id: str) -> None: ...


class Onboarding:
    def __init__(self, db: Database, channels: ServiceChannels, users: UserStore = store) -> None:
        self._db = db
        self._store = users
        self._credit = CreditClient(channels, timeout=DOWNSTREAM_TIMEOUT_SECONDS)
        self._billing = BillingClient(channels, timeout=DOWNSTREAM_TIMEOUT_SECONDS)

    async def initialize(self, identity: Identity, email: str, name: str | None) -> Member:
        return await self._ensure(identity.user_id, clean_email(email), clean_name(name))

    async def me(self, identity: Identity) -> Member:
        async with self._db.autocommit() as conn:
            profile = await self._store.get(conn, identity.user_id)
        if profile is not None and profile.credits_ready:
            return Member(profile, await self._standing(profile.id), created=False)
        email = clean_email(identity.email) if identity.email else None
        return await self._ensure(identity.user_id, email, clean_name(identity.name))

    async def get(self, user_id: str) -> Member:
        async with self._db.autocommit() as conn:
            profile = await self._store.get(conn, user_id)
        if profile is None:
            raise NotFound("User not found")
        return Member(profile, await self._standing(user_id), created=False)

    async def _ensure(self, user_id: str, email: str | None, name: str | None) -> Member:
        async with self._db.transaction() as conn:
            profile, created = await self._store.create_or_get(conn, user_id, email, name)
        if profile.credits_ready:
            return Member(profile, await self._standing(user_id), created)
        standing = await self._place_on_signup_plan(user_id)
        async with self._db.transaction() as conn:
            await self._store.mark_credits_ready(conn, user_id)
        return Member(profile, standing, created)

    async def _place_on_signup_plan(self, user_id: str) -> Standing:
        plan = await self._billing.plan(SIGNUP_PLAN)
        terms = PlanTerms(
            plan_name=plan.id,
            monthly_allowance=plan.monthly_credits,
            is_unlimited=plan.is_unlimited,
            features=plan.features,
        )
        account = await self._credit.set_plan(
            user_id, terms, key=signup_key(user_id), start_new_period=True
        )
        return _standing(plan.name, account)

    async def _standing(self, user_id: str) -> Standing:
        account = await self._credit.account(user_id)
        plan: Plan | None
        try:
            plan = await self._billing.plan(account.plan_name)
        except NotFound:
            plan = None  # a plan the catalog no longer lists: the account's terms still hold
        return _standing(plan.name if plan else "", account)


def _standing(display_name: str, account: AccountSummary) -> Standing:
    """The account's terms are the ones in force (billing's catalog may have changed since); the
    catalog adds the plan's display name."""
    return Standing(
        plan_id=account.plan_name,
        plan_name=display_name or account.plan_name,
        monthly_credits=account.monthly_allowance,
        is_unlimited=account.is_unlimited,
        current_credits=account.current_credits,
        credit_reset_at=account.credit_reset_at,
    )
