"""Credit servicers: proto <-> domain translation only."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TypeVar

import grpc

from services.credit import admin, metrics
from services.credit.domain import (
    DEFAULT_PRIORITY,
    Account,
    Category,
    PlanTerms,
    Posting,
    days_until,
    parse_category,
    validate_amount,
    validate_key,
    validate_priority,
)
from services.credit.grants import Grants
from services.credit.ledger import Ledger
from services.credit.messages import credits_to_proto, entry_to_proto
from services.credit.plans import Plans
from services.credit.reservations import Reservations
from services.kit.access import Access
from services.kit.context import current_identity
from services.kit.errors import InvalidInput, NotFound
from services.kit.pagination import decode_cursor, page_and_cursor, page_limit
from services.kit.proto_time import from_timestamp, to_timestamp
from studiox.credit.v1 import credit_pb2, credit_pb2_grpc

# Support staff's API (services.credit.admin): a session with the admin role, never a user's.
ACCESS = {
    "CreditAdminService/GrantCredits": Access.ADMIN,
    "CreditAdminService/VoidGrant": Access.ADMIN,
    "CreditAdminService/ShowAccount": Access.ADMIN,
}
RESET_BATCH_DEFAULT = 10_000
RESET_BATCH_MAX = 50_000

_BUCKETS = {
    credit_pb2.BUCKET_ALLOWANCE: Category.ALLOWANCE,
    credit_pb2.BUCKET_PURCHASED: Category.PURCHASED,
}


PostingResponse = TypeVar(
    "PostingResponse",
    credit_pb2.ChargeResponse,
    credit_pb2.RefundResponse,
    credit_pb2.GrantResponse,
)


def _posting(response: type[PostingResponse], posting: Posting) -> PostingResponse:
    """Charge, refund and grant answer alike: the entry, the balance after it, whether applied."""
    return response(
        entry=entry_to_proto(posting.entry),
        remaining_credits=posting.remaining_credits,
        applied=posting.applied,
    )


class CreditApi(credit_pb2_grpc.CreditServiceServicer):
    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    async def _account(self) -> Account:
        account = await self._ledger.account(current_identity().user_id)
        if account is None:
            raise NotFound("Credit account not found; initialize the user first")
        return account

    async def GetCredits(
        self, request: credit_pb2.GetCreditsRequest, context: grpc.aio.ServicerContext
    ) -> credit_pb2.GetCreditsResponse:
        view = await self._ledger.credits(current_identity().user_id)
        if view is None:
            raise NotFound("Credit account not found; initialize the user first")
        return credit_pb2.GetCreditsResponse(
            success=True, credits=credits_to_proto(view.account, view.grants, view.reserved)
        )

    async def ListTransactions(
        self, request: credit_pb2.ListTransactionsRequest, context: grpc.aio.ServicerContext
    ) -> credit_pb2.ListTransactionsResponse:
        limit = page_limit(request.limit)
        before = decode_cursor(request.cursor)
        entries = await self._ledger.transactions(
            current_identity().user_id, limit=limit + 1, before_id=before
        )
        page, cursor = page_and_cursor(entries, limit, lambda e: e.id)
        return credit_pb2.ListTransactionsResponse(
            success=True,
            count=len(page),
            transactions=[entry_to_proto(e) for e in page],
            next_cursor=cursor,
        )

    async def GetNextResetDate(
        self, request: credit_pb2.GetNextResetDateRequest, context: grpc.aio.ServicerContext
    ) -> credit_pb2.GetNextResetDateResponse:
        account = await self._account()
        return credit_pb2.GetNextResetDateResponse(
            success=True,
            next_billing_date=to_timestamp(account.credit_reset_at),
            days_until_reset=days_until(account.credit_reset_at, datetime.now(UTC)),
        )


class CreditInternalApi(credit_pb2_grpc.CreditInternalServiceServicer):
    def __init__(
        self, ledger: Ledger, grants: Grants, plans: Plans, reservations: Reservations
    ) -> None:
        self._ledger = ledger
        self._grants = grants
        self._plans = plans
        self._reservations = reservations

    async def Charge(
        self, request: credit_pb2.ChargeRequest, context: grpc.aio.ServicerContext
    ) -> credit_pb2.ChargeResponse:
        _check_posting(request.user_id, request.amount, request.idempotency_key)
        posting = await self._ledger.charge(
            user_id=request.user_id,
            amount=request.amount,
            key=request.idempotency_key,
            reference=request.reference,
            description=request.description,
            feature=request.feature,
            hold=request.hold,
        )
        return _posting(credit_pb2.ChargeResponse, posting)

    async def Refund(
        self, request: credit_pb2.RefundRequest, context: grpc.aio.ServicerContext
    ) -> credit_pb2.RefundResponse:
        _check_posting(request.user_id, request.amount, request.idempotency_key, allow_zero=True)
        validate_key(request.charge_idempotency_key)
        posting = await self._ledger.refund(
            user_id=request.user_id,
            charge_key=request.charge_idempotency_key,
            amount=request.amount,
            key=request.idempotency_key,
            description=request.description,
        )
        return _posting(credit_pb2.RefundResponse, posting)

    async def Grant(
        self, request: credit_pb2.GrantRequest, context: grpc.aio.ServicerContext
    ) -> credit_pb2.GrantResponse:
        _check_posting(request.user_id, request.amount, request.idempotency_key)
        if request.category:
            category = parse_category(request.category)
        elif request.bucket in _BUCKETS:
            category = _BUCKETS[request.bucket]
        else:
            raise InvalidInput("category (or bucket) is required")
        priority = request.priority if request.HasField("priority") else DEFAULT_PRIORITY[category]
        validate_priority(priority)
        expires_at = from_timestamp(request.expires_at) if request.HasField("expires_at") else None
        if expires_at is not None and expires_at <= datetime.now(UTC):
            raise InvalidInput("expiresAt must be in the future")
        posting = await self._grants.grant(
            user_id=request.user_id,
            amount=request.amount,
            category=category,
            key=request.idempotency_key,
            reference=request.reference,
            description=request.description,
            expires_at=expires_at,
            priority=priority,
        )
        return _posting(credit_pb2.GrantResponse, posting)

    async def SetPlan(
        self, request: credit_pb2.SetPlanRequest, context: grpc.aio.ServicerContext
    ) -> credit_pb2.SetPlanResponse:
        _require_user(request.user_id)
        validate_key(request.idempotency_key)
        terms = PlanTerms(
            plan_name=request.terms.plan_name,
            monthly_allowance=request.terms.monthly_allowance,
            is_unlimited=request.terms.is_unlimited,
            features=tuple(request.terms.features),
        )
        terms.validate()
        now = datetime.now(UTC)
        period_end = from_timestamp(request.period_end) if request.HasField("period_end") else None
        if period_end is not None and period_end <= now:
            raise InvalidInput("periodEnd must be in the future")
        account, applied = await self._plans.set_plan(
            user_id=request.user_id,
            terms=terms,
            key=request.idempotency_key,
            start_new_period=request.start_new_period,
            period_end=period_end,
            now=now,
        )
        return credit_pb2.SetPlanResponse(credits=credits_to_proto(account), applied=applied)

    async def ResetDue(
        self, request: credit_pb2.ResetDueRequest, context: grpc.aio.ServicerContext
    ) -> credit_pb2.ResetDueResponse:
        batch = page_limit(request.batch_size, default=RESET_BATCH_DEFAULT, maximum=RESET_BATCH_MAX)
        as_of = from_timestamp(request.as_of) if request.HasField("as_of") else datetime.now(UTC)
        count, more = await self._plans.reset_due(as_of=as_of, batch_size=batch)
        return credit_pb2.ResetDueResponse(accounts_reset=count, more=more)

    async def ExpireDue(
        self, request: credit_pb2.ExpireDueRequest, context: grpc.aio.ServicerContext
    ) -> credit_pb2.ExpireDueResponse:
        batch = page_limit(request.batch_size, default=RESET_BATCH_DEFAULT, maximum=RESET_BATCH_MAX)
        as_of = from_timestamp(request.as_of) if request.HasField("as_of") else datetime.now(UTC)
        grants, accounts, more = await self._plans.expire_due(as_of=as_of, batch_size=batch)
        return credit_pb2.ExpireDueResponse(grants_expired=grants, accounts=accounts, more=more)

    async def VerifyLedger(
        self, request: credit_pb2.VerifyLedgerRequest, context: grpc.aio.ServicerContext
    ) -> credit_pb2.VerifyLedgerResponse:
        checked, differences = await self._ledger.verify()
        held = await self._reservations.verify()
        differences = [*differences, *held.differences]
        metrics.record_verification(len(differences))
        return credit_pb2.VerifyLedgerResponse(
            open_reservations=held.open,
            reserved_credits=held.held,
            accounts_checked=checked,
            differences=[
                credit_pb2.LedgerDifference(
                    user_id=d.user_id, problem=d.problem, balance=d.balance, ledger_sum=d.ledger_sum
                )
                for d in differences
            ],
        )

    async def GetAccount(
        self, request: credit_pb2.GetAccountRequest, context: grpc.aio.ServicerContext
    ) -> credit_pb2.GetAccountResponse:
        _require_user(request.user_id)
        view = await self._ledger.credits(request.user_id)
        if view is None:
            raise NotFound("Credit account not found")
        return credit_pb2.GetAccountResponse(
            credits=credits_to_proto(view.account, view.grants, view.reserved)
        )

    async def Clawback(
        self, request: credit_pb2.ClawbackRequest, context: grpc.aio.ServicerContext
    ) -> credit_pb2.ClawbackResponse:
        _require_user(request.user_id)
        validate_key(request.grant_key)
        validate_amount(request.clawed_credits, allow_zero=True)
        done = await self._grants.clawback(
            user_id=request.user_id,
            grant_key=request.grant_key,
            target=request.clawed_credits,
            reference=request.reference,
            description=request.description,
        )
        reply = credit_pb2.ClawbackResponse(
            applied=done.applied,
            clawed_credits=done.clawed,
            owed_credits=done.owed,
            remaining_credits=done.remaining_credits,
        )
        if done.entry is not None:
            reply.entry.CopyFrom(entry_to_proto(done.entry))
        return reply

    async def Quote(
        self, request: credit_pb2.QuoteRequest, context: grpc.aio.ServicerContext
    ) -> credit_pb2.QuoteResponse:
        _require_user(request.user_id)
        validate_amount(request.amount)
        account, answer = await self._ledger.quote(
            user_id=request.user_id, amount=request.amount, feature=request.feature
        )
        return credit_pb2.QuoteResponse(
            allowed=answer.allowed,
            reason=answer.reason,
            message=answer.message,
            available_credits=answer.available,
            plan_name=account.terms.plan_name,
            is_unlimited=account.terms.is_unlimited,
        )

    async def Settle(
        self, request: credit_pb2.SettleRequest, context: grpc.aio.ServicerContext
    ) -> credit_pb2.SettleResponse:
        _require_user(request.user_id)
        validate_key(request.reservation_key)
        validate_key(request.idempotency_key)
        validate_amount(request.cost, allow_zero=True)
        settled = await self._reservations.settle(
            user_id=request.user_id,
            reservation_key=request.reservation_key,
            cost=request.cost,
            key=request.idempotency_key,
            description=request.description,
        )
        return credit_pb2.SettleResponse(
            charged=settled.charged,
            returned=settled.returned,
            uncharged=settled.uncharged,
            remaining_credits=settled.remaining_credits,
            applied=settled.applied,
        )

    # Support operations for `studiox credits`: the CLI names its actor.

    async def AdminGrantCredits(
        self, request: credit_pb2.AdminGrantCreditsRequest, context: grpc.aio.ServicerContext
    ) -> credit_pb2.AdminGrantCreditsResponse:
        reply = await admin.grant_credits(
            self._ledger, self._grants, request.request, request.actor
        )
        return credit_pb2.AdminGrantCreditsResponse(response=reply)

    async def AdminVoidGrant(
        self, request: credit_pb2.AdminVoidGrantRequest, context: grpc.aio.ServicerContext
    ) -> credit_pb2.AdminVoidGrantResponse:
        voided = await admin.void_grant(self._grants, request.request, request.actor)
        return credit_pb2.AdminVoidGrantResponse(response=voided)

    async def AdminShowAccount(
        self, request: credit_pb2.AdminShowAccountRequest, context: grpc.aio.ServicerContext
    ) -> credit_pb2.AdminShowAccountResponse:
        shown = await admin.show_account(self._ledger, request.request)
        return credit_pb2.AdminShowAccountResponse(response=shown)


def _require_user(user_id: str) -> None:
    if not user_id or len(user_id) > 128:
        raise InvalidInput("userId is required")


def _check_posting(user_id: str, amount: int, key: str, *, allow_zero: bool = False) -> None:
    """What every request that posts an entry (charge, refund, grant) must carry."""
    _require_user(user_id)
    validate_amount(amount, allow_zero=allow_zero)
    validate_key(key)
