"""Helpers for tests that move credits through the real credit service."""

from __future__ import annotations

from datetime import datetime

import grpc

from services.kit.features import FEATURES, TaskType
from studiox.credit.v1 import credit_pb2, credit_pb2_grpc
from tests.support.cluster import internal_metadata
from tests.support.tokens import new_user_id

FREE = credit_pb2.PlanTerms(
    plan_name="free",
    monthly_allowance=10,
    is_unlimited=False,
    features=[TaskType.IMAGE_ANALYSIS.value, TaskType.VIDEO_GENERATION.value],
)
PRO = credit_pb2.PlanTerms(
    plan_name="pro",
    monthly_allowance=100,
    is_unlimited=False,
    features=FEATURES,
)
ENTERPRISE = credit_pb2.PlanTerms(
    plan_name="enterprise",
    monthly_allowance=0,
    is_unlimited=True,
    features=FEATURES,
)


class CreditClient:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.stub = credit_pb2_grpc.CreditInternalServiceStub(channel)

    async def open_account(
        self,
        terms: credit_pb2.PlanTerms = FREE,
        *,
        purchased: int = 0,
        user_id: str | None = None,
    ) -> str:
        user = user_id or new_user_id()
        await self.stub.SetPlan(
            credit_pb2.SetPlanRequest(
                user_id=user, terms=terms, idempotency_key=f"open:{user}", start_new_period=True
            ),
            metadata=internal_metadata(),
        )
        if purchased:
            await self.grant(user, purchased, credit_pb2.BUCKET_PURCHASED)
        return user

    async def grant(
        self, user: str, amount: int, bucket: credit_pb2.Bucket, key: str | None = None
    ) -> None:
        await self.stub.Grant(
            credit_pb2.GrantRequest(
                user_id=user,
                amount=amount,
                bucket=bucket,
                idempotency_key=key or f"grant:{amount}:{bucket}",
            ),
            metadata=internal_metadata(),
        )

    async def give(
        self,
        user: str,
        amount: int,
        category: str,
        key: str,
        *,
        priority: int | None = None,
        expires_at: datetime | None = None,
    ) -> credit_pb2.GrantResponse:
        """A grant of any category, with an optional priority and expiry."""
        request = credit_pb2.GrantRequest(
            user_id=user, amount=amount, category=category, idempotency_key=key
        )
        if priority is not None:
            request.priority = priority
        if expires_at is not None:
            request.expires_at.FromDatetime(expires_at)
        return await self.stub.Grant(request, metadata=internal_metadata())

    async def expire(self, as_of: datetime | None = None, batch: int = 500) -> int:
        """ExpireDue until nothing is due; the grants expired."""
        total = 0
        while True:
            request = credit_pb2.ExpireDueRequest(batch_size=batch)
            if as_of is not None:
                request.as_of.FromDatetime(as_of)
            reply = await self.stub.ExpireDue(request, metadata=internal_metadata(), timeout=120)
            total += reply.grants_expired
            if not reply.more or reply.grants_expired == 0:
                return total

    async def clawback(
        self, user: str, grant_key: str, credits: int
    ) -> credit_pb2.ClawbackResponse:
        return await self.stub.Clawback(
            credit_pb2.ClawbackRequest(
                user_id=user, grant_key=grant_key, clawed_credits=credits, reference=grant_key
            ),
            metadata=internal_metadata(),
        )

    async def charge(
        self, user: str, amount: int, key: str, feature: str = "image_analysis", hold: bool = False
    ) -> credit_pb2.ChargeResponse:
        return await self.stub.Charge(
            credit_pb2.ChargeRequest(
                user_id=user,
                amount=amount,
                idempotency_key=key,
                feature=feature,
                reference=key,
                hold=hold,
            ),
            metadata=internal_metadata(),
        )

    async def settle(self, user: str, hold_key: str, cost: int) -> credit_pb2.SettleResponse:
        return await self.stub.Settle(
            credit_pb2.SettleRequest(
                user_id=user,
                reservation_key=hold_key,
                cost=cost,
                idempotency_key=f"settle:{hold_key}",
            ),
            metadata=internal_metadata(),
        )

    async def refund(
        self, user: str, charge_key: str, key: str, amount: int = 0
    ) -> credit_pb2.RefundResponse:
        return await self.stub.Refund(
            credit_pb2.RefundRequest(
                user_id=user, charge_idempotency_key=charge_key, idempotency_key=key, amount=amount
            ),
            metadata=internal_metadata(),
        )

    async def account(self, user: str) -> credit_pb2.Credits:
        reply = await self.stub.GetAccount(
            credit_pb2.GetAccountRequest(user_id=user), metadata=internal_metadata()
        )
        return reply.credits

    async def verify(self) -> credit_pb2.VerifyLedgerResponse:
        return await self.stub.VerifyLedger(
            credit_pb2.VerifyLedgerRequest(), metadata=internal_metadata(), timeout=120
        )
