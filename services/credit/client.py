"""The credit service as other services, the scheduler and the CLI call it: one method per internal
RPC, taking and returning plain values. Every call has the client's one deadline (`timeout`) and
fails with the domain error the ledger raised (`services.kit.clients.call`): a 402 from the ledger
reaches a caller's caller unchanged, a transport failure is `Unavailable`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from services.credit.domain import Category, LedgerDifference, PlanTerms
from services.kit.clients import ServiceClient
from services.kit.proto_time import from_timestamp
from studiox.credit.v1 import credit_pb2, credit_pb2_grpc


@dataclass(frozen=True)
class Posted:
    """A charge, refund or grant: whether this call applied it (False: its key was used before,
    the first result stands) and the balance after it."""

    applied: bool
    remaining_credits: int


@dataclass(frozen=True)
class Settled:
    """A reservation settled: credits kept, given back, and left uncharged above it."""

    charged: int
    returned: int
    uncharged: int
    applied: bool


@dataclass(frozen=True)
class AccountSummary:
    """An account's terms and balances as the ledger has them now."""

    user_id: str
    plan_name: str
    monthly_allowance: int
    is_unlimited: bool
    current_credits: int
    owed_credits: int
    credit_reset_at: datetime


@dataclass(frozen=True)
class QuoteAnswer:
    """Whether a charge would be taken now, by the charge's own rule."""

    allowed: bool
    reason: str
    message: str
    available_credits: int
    plan_name: str
    is_unlimited: bool


@dataclass(frozen=True)
class Clawed:
    applied: bool
    clawed_credits: int
    owed_credits: int
    remaining_credits: int


@dataclass(frozen=True)
class Batch:
    """One batch of the reset or expiry job: how many accounts (and grants) it closed, and whether
    more are due."""

    accounts: int
    grants: int
    more: bool


@dataclass(frozen=True)
class LedgerReport:
    accounts_checked: int
    differences: list[LedgerDifference]


@dataclass(frozen=True)
class Drained:
    """What a run of batches closed, over all its loops."""

    accounts: int
    grants: int
    batches: int


async def drain(step: Callable[[], Awaitable[Batch]], *, loops: int, max_batches: int) -> Drained:
    """Call a batch RPC (`reset_due`, `expire_due`) from `loops` concurrent loops until nothing is
    due, each loop at most `max_batches` times. The ledger locks each batch with SKIP LOCKED, so
    the loops' batches never overlap; an empty batch while more is due means the rest is another
    loop's."""

    async def loop() -> Drained:
        accounts = grants = batches = 0
        while batches < max_batches:
            batch = await step()
            accounts += batch.accounts
            grants += batch.grants
            batches += 1
            if not batch.more or batch.accounts + batch.grants == 0:
                break
        return Drained(accounts, grants, batches)

    runs = await asyncio.gather(*(loop() for _ in range(loops)))
    return Drained(
        sum(r.accounts for r in runs), sum(r.grants for r in runs), sum(r.batches for r in runs)
    )


class CreditClient(ServiceClient[credit_pb2_grpc.CreditInternalServiceStub]):
    service = "credit"
    stub_type = credit_pb2_grpc.CreditInternalServiceStub

    async def charge(
        self,
        user_id: str,
        amount: int,
        *,
        key: str,
        feature: str,
        reference: str = "",
        description: str = "",
        hold: bool = False,
    ) -> Posted:
        """With `hold`, a reservation that `settle` (or `refund`, releasing it) ends."""
        request = credit_pb2.ChargeRequest(
            user_id=user_id,
            amount=amount,
            idempotency_key=key,
            reference=reference,
            description=description,
            feature=feature,
            hold=hold,
        )
        reply = await self._call(self._stub.Charge, request)
        return Posted(reply.applied, reply.remaining_credits)

    async def refund(
        self, user_id: str, *, charge_key: str, key: str, amount: int = 0, description: str = ""
    ) -> Posted:
        """Give back `amount` of the charge made under `charge_key` (0: all that is left)."""
        request = credit_pb2.RefundRequest(
            user_id=user_id,
            charge_idempotency_key=charge_key,
            amount=amount,
            idempotency_key=key,
            description=description,
        )
        reply = await self._call(self._stub.Refund, request)
        return Posted(reply.applied, reply.remaining_credits)

    async def settle(
        self, user_id: str, *, reservation_key: str, cost: int, key: str, description: str = ""
    ) -> Settled:
        """Charge what the work cost (at most the reservation) and give the rest back."""
        request = credit_pb2.SettleRequest(
            user_id=user_id,
            reservation_key=reservation_key,
            cost=cost,
            idempotency_key=key,
            description=description,
        )
        reply = await self._call(self._stub.Settle, request)
        return Settled(reply.charged, reply.returned, reply.uncharged, reply.applied)

    async def grant(
        self,
        user_id: str,
        amount: int,
        category: Category,
        *,
        key: str,
        reference: str = "",
        description: str = "",
        expires_at: datetime | None = None,
        priority: int | None = None,
    ) -> Posted:
        request = credit_pb2.GrantRequest(
            user_id=user_id,
            amount=amount,
            category=category.value,
            idempotency_key=key,
            reference=reference,
            description=description,
        )
        if expires_at is not None:
            request.expires_at.FromDatetime(expires_at)
        if priority is not None:
            request.priority = priority
        reply = await self._call(self._stub.Grant, request)
        return Posted(reply.applied, reply.remaining_credits)

    async def set_plan(
        self,
        user_id: str,
        terms: PlanTerms,
        *,
        key: str,
        start_new_period: bool = True,
        period_end: datetime | None = None,
    ) -> AccountSummary:
        request = credit_pb2.SetPlanRequest(
            user_id=user_id,
            terms=credit_pb2.PlanTerms(
                plan_name=terms.plan_name,
                monthly_allowance=terms.monthly_allowance,
                is_unlimited=terms.is_unlimited,
                features=terms.features,
            ),
            idempotency_key=key,
            start_new_period=start_new_period,
        )
        if period_end is not None:
            request.period_end.FromDatetime(period_end)
        reply = await self._call(self._stub.SetPlan, request)
        return _summary(reply.credits)

    async def account(self, user_id: str) -> AccountSummary:
        """The account (NotFound when the user has none yet)."""
        request = credit_pb2.GetAccountRequest(user_id=user_id)
        reply = await self._call(self._stub.GetAccount, request)
        return _summary(reply.credits)

    async def quote(self, user_id: str, amount: int, feature: str) -> QuoteAnswer:
        request = credit_pb2.QuoteRequest(user_id=user_id, amount=amount, feature=feature)
        reply = await self._call(self._stub.Quote, request)
        return QuoteAnswer(
            allowed=reply.allowed,
            reason=reply.reason,
            message=reply.message,
            available_credits=reply.available_credits,
            plan_name=reply.plan_name,
            is_unlimited=reply.is_unlimited,
        )

    async def clawback(
        self, user_id: str, *, grant_key: str, target: int, reference: str, description: str
    ) -> Clawed:
        """Bring the credits taken back for the purchase granted under `grant_key` to `target` (a
        state: repeating it changes nothing)."""
        request = credit_pb2.ClawbackRequest(
            user_id=user_id,
            grant_key=grant_key,
            clawed_credits=target,
            reference=reference,
            description=description,
        )
        reply = await self._call(self._stub.Clawback, request)
        return Clawed(
            reply.applied, reply.clawed_credits, reply.owed_credits, reply.remaining_credits
        )

    async def reset_due(self, *, batch_size: int, as_of: datetime) -> Batch:
        request = credit_pb2.ResetDueRequest(batch_size=batch_size)
        request.as_of.FromDatetime(as_of)
        reply = await self._call(self._stub.ResetDue, request)
        return Batch(accounts=reply.accounts_reset, grants=0, more=reply.more)

    async def expire_due(self, *, batch_size: int, as_of: datetime) -> Batch:
        request = credit_pb2.ExpireDueRequest(batch_size=batch_size)
        request.as_of.FromDatetime(as_of)
        reply = await self._call(self._stub.ExpireDue, request)
        return Batch(accounts=reply.accounts, grants=reply.grants_expired, more=reply.more)

    async def verify(self) -> LedgerReport:
        reply = await self._call(self._stub.VerifyLedger, credit_pb2.VerifyLedgerRequest())
        return LedgerReport(
            reply.accounts_checked,
            [
                LedgerDifference(d.user_id, d.problem, d.balance, d.ledger_sum)
                for d in reply.differences
            ],
        )

    # Support's operations for `studiox credits`: the admin API's own messages, which the CLI
    # prints as they are, with the operator named as actor.

    async def admin_grant(
        self, request: credit_pb2.GrantCreditsRequest, actor: str
    ) -> credit_pb2.GrantCreditsResponse:
        wrapped = credit_pb2.AdminGrantCreditsRequest(request=request, actor=actor)
        reply = await self._call(self._stub.AdminGrantCredits, wrapped)
        response: credit_pb2.GrantCreditsResponse = reply.response
        return response

    async def admin_void(
        self, request: credit_pb2.VoidGrantRequest, actor: str
    ) -> credit_pb2.VoidGrantResponse:
        wrapped = credit_pb2.AdminVoidGrantRequest(request=request, actor=actor)
        reply = await self._call(self._stub.AdminVoidGrant, wrapped)
        response: credit_pb2.VoidGrantResponse = reply.response
        return response

    async def admin_show(self, user_id: str) -> credit_pb2.ShowAccountResponse:
        wrapped = credit_pb2.AdminShowAccountRequest(
            request=credit_pb2.ShowAccountRequest(user_id=user_id)
        )
        reply = await self._call(self._stub.AdminShowAccount, wrapped)
        response: credit_pb2.ShowAccountResponse = reply.response
        return response


def _summary(credits: credit_pb2.Credits) -> AccountSummary:
    return AccountSummary(
        user_id=credits.user_id,
        plan_name=credits.plan_name,
        monthly_allowance=credits.monthly_allowance,
        is_unlimited=credits.is_unlimited,
        current_credits=credits.current_credits,
        owed_credits=credits.owed_credits,
        credit_reset_at=from_timestamp(credits.credit_reset_at),
    )
