"""Service layer of the user service: profile creation and plan placement, across the user table and
the billing/credit services. Each step is idempotent, so any retry (or a later /me) finishes what an
earlier, interrupted call started."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import grpc
from sqlalchemy.ext.asyncio import AsyncConnection

from services.kit.auth import Identity
from services.kit.clients import ServiceChannels, domain_error
from services.kit.db import Database
from services.kit.errors import NotFound
from services.kit.proto_time import from_timestamp
from services.user import store
from services.user.domain import SIGNUP_PLAN, Profile, clean_email, clean_name, signup_key
from studiox.billing.v1 import billing_pb2, billing_pb2_grpc
from studiox.credit.v1 import credit_pb2, credit_pb2_grpc

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

    async def get(self, conn: AsyncConnection, user_id: str) -> Profile | None: ...

    async def create_or_get(
        self, conn: AsyncConnection, user_id: str, email: str | None, name: str | None
    ) -> tuple[Profile, bool]: ...

    async def mark_credits_ready(self, conn: AsyncConnection, user_id: str) -> None: ...


class Onboarding:
    def __init__(self, db: Database, channels: ServiceChannels, users: UserStore = store) -> None:
        self._db = db
        self._store = users
        self._credit = credit_pb2_grpc.CreditInternalServiceStub(channels.channel("credit"))
        self._billing = billing_pb2_grpc.BillingInternalServiceStub(channels.channel("billing"))

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
        try:
            plan = (
                await self._billing.GetPlan(
                    billing_pb2.GetPlanRequest(plan_id=SIGNUP_PLAN),
                    timeout=DOWNSTREAM_TIMEOUT_SECONDS,
                )
            ).plan
            reply = await self._credit.SetPlan(
                credit_pb2.SetPlanRequest(
                    user_id=user_id,
                    terms=credit_pb2.PlanTerms(
                        plan_name=plan.id,
                        monthly_allowance=plan.monthly_credits,
                        is_unlimited=plan.is_unlimited,
                        features=plan.features,
                    ),
                    idempotency_key=signup_key(user_id),
                    start_new_period=True,
                ),
                timeout=DOWNSTREAM_TIMEOUT_SECONDS,
            )
        except grpc.aio.AioRpcError as err:
            raise domain_error(err) from err
        return _standing(plan, reply.credits)

    async def _standing(self, user_id: str) -> Standing:
        try:
            account = await self._credit.GetAccount(
                credit_pb2.GetAccountRequest(user_id=user_id), timeout=DOWNSTREAM_TIMEOUT_SECONDS
            )
        except grpc.aio.AioRpcError as err:
            raise domain_error(err) from err
        try:
            plan = await self._billing.GetPlan(
                billing_pb2.GetPlanRequest(plan_id=account.credits.plan_name),
                timeout=DOWNSTREAM_TIMEOUT_SECONDS,
            )
        except grpc.aio.AioRpcError as err:
            if err.code() is not grpc.StatusCode.NOT_FOUND:
                raise domain_error(err) from err
            # A plan the catalog no longer lists: the account's terms still hold.
            plan = billing_pb2.GetPlanResponse()
        return _standing(plan.plan, account.credits)


def _standing(plan: billing_pb2.Plan, credits: credit_pb2.Credits) -> Standing:
    """The account's terms are the ones in force (billing's catalog may have changed since); the
    catalog adds the plan's display name."""
    return Standing(
        plan_id=credits.plan_name,
        plan_name=plan.name or credits.plan_name,
        monthly_credits=credits.monthly_allowance,
        is_unlimited=credits.is_unlimited,
        current_credits=credits.current_credits,
        credit_reset_at=from_timestamp(credits.credit_reset_at),
    )
