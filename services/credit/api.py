"""Credit servicers: proto <-> domain translation only."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TypeVar

import grpc

from services.credit import metrics, store
from services.credit.domain import (
    Account,
    Bucket,
    Entry,
    EntryKind,
    PlanTerms,
    Posting,
    days_until,
    validate_amount,
    validate_key,
)
from services.kit.auth import current_identity
from services.kit.db import Database
from services.kit.errors import DomainError, InvalidInput, NotFound
from services.kit.pagination import decode_cursor, page_and_cursor, page_limit
from services.kit.proto_time import from_timestamp, to_timestamp
from services.kit.server import ServiceSpec
from services.kit.settings import Settings
from services.kit.spec import database_service
from studiox.credit.v1 import credit_pb2, credit_pb2_grpc

RESET_BATCH_DEFAULT = 10_000
RESET_BATCH_MAX = 50_000

_KINDS = {
    EntryKind.GRANT: credit_pb2.ENTRY_KIND_GRANT,
    EntryKind.CHARGE: credit_pb2.ENTRY_KIND_CHARGE,
    EntryKind.REFUND: credit_pb2.ENTRY_KIND_REFUND,
    EntryKind.EXPIRY: credit_pb2.ENTRY_KIND_EXPIRY,
}
_BUCKETS = {
    credit_pb2.BUCKET_ALLOWANCE: Bucket.ALLOWANCE,
    credit_pb2.BUCKET_PURCHASED: Bucket.PURCHASED,
}


def entry_to_proto(entry: Entry) -> credit_pb2.LedgerEntry:
    return credit_pb2.LedgerEntry(
        id=str(entry.id),
        kind=_KINDS[entry.kind],
        amount=entry.amount,
        allowance_delta=entry.allowance_delta,
        purchased_delta=entry.purchased_delta,
        reference=entry.reference,
        description=entry.description,
        created_at=to_timestamp(entry.created_at),
        balance_after=entry.balance_after,
        usage=entry.usage,
        idempotency_key=entry.idempotency_key,
    )


def credits_to_proto(account: Account) -> credit_pb2.Credits:
    return credit_pb2.Credits(
        user_id=account.user_id,
        current_credits=account.current_credits,
        allowance_credits=account.allowance_balance,
        purchased_credits=account.purchased_balance,
        monthly_allowance=account.terms.monthly_allowance,
        plan_name=account.terms.plan_name,
        is_unlimited=account.terms.is_unlimited,
        credits_used_this_month=account.used_this_period,
        credit_reset_at=to_timestamp(account.credit_reset_at),
    )


PostingResponse = TypeVar(
    "PostingResponse",
    credit_pb2.ChargeResponse,
    credit_pb2.RefundResponse,
    credit_pb2.GrantResponse,
)


def _posting(response: type[PostingResponse], posting: Posting) -> PostingResponse:
    """Charge, refund and grant answer alike: the entry, the balance after it, whether applied."""
    metrics.record(posting)
    return response(
        entry=entry_to_proto(posting.entry),
        remaining_credits=posting.remaining_credits,
        applied=posting.applied,
    )


class CreditApi(credit_pb2_grpc.CreditServiceServicer):
    def __init__(self, db: Database) -> None:
        self._db = db

    async def _account(self) -> Account:
        async with self._db.autocommit() as conn:
            account = await store.get_account(conn, current_identity().user_id)
        if account is None:
            raise NotFound("Credit account not found; initialize the user first")
        return account

    async def GetCredits(
        self, request: credit_pb2.GetCreditsRequest, context: grpc.aio.ServicerContext
    ) -> credit_pb2.GetCreditsResponse:
        return credit_pb2.GetCreditsResponse(
            success=True, credits=credits_to_proto(await self._account())
        )

    async def ListTransactions(
        self, request: credit_pb2.ListTransactionsRequest, context: grpc.aio.ServicerContext
    ) -> credit_pb2.ListTransactionsResponse:
        limit = page_limit(request.limit)
        before = decode_cursor(request.cursor)
        async with self._db.autocommit() as conn:
            entries = await store.list_entries(
                conn, current_identity().user_id, limit=limit + 1, before_id=before
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
    def __init__(self, db: Database) -> None:
        self._db = db

    async def Charge(
        self, request: credit_pb2.ChargeRequest, context: grpc.aio.ServicerContext
    ) -> credit_pb2.ChargeResponse:
        _require_user(request.user_id)
        validate_amount(request.amount)
        validate_key(request.idempotency_key)
        async with self._db.autocommit() as conn:
            try:
                posting = await store.charge(
                    conn,
                    user_id=request.user_id,
                    amount=request.amount,
                    key=request.idempotency_key,
                    reference=request.reference,
                    description=request.description,
                    feature=request.feature,
                )
            except DomainError as refusal:
                metrics.REFUSED_CHARGES.labels(refusal.kind.value).inc()
                raise
        return _posting(credit_pb2.ChargeResponse, posting)

    async def Refund(
        self, request: credit_pb2.RefundRequest, context: grpc.aio.ServicerContext
    ) -> credit_pb2.RefundResponse:
        _require_user(request.user_id)
        validate_amount(request.amount, allow_zero=True)
        validate_key(request.idempotency_key)
        validate_key(request.charge_idempotency_key)
        async with self._db.transaction() as conn:
            posting = await store.refund(
                conn,
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
        _require_user(request.user_id)
        validate_amount(request.amount)
        validate_key(request.idempotency_key)
        bucket = _BUCKETS.get(request.bucket)
        if bucket is None:
            raise InvalidInput("bucket must be BUCKET_ALLOWANCE or BUCKET_PURCHASED")
        async with self._db.autocommit() as conn:
            posting = await store.grant(
                conn,
                user_id=request.user_id,
                amount=request.amount,
                bucket=bucket,
                key=request.idempotency_key,
                reference=request.reference,
                description=request.description,
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
        async with self._db.transaction() as conn:
            account, applied = await store.set_plan(
                conn,
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
        async with self._db.transaction() as conn:
            count, more = await store.reset_due(conn, as_of=as_of, batch_size=batch)
        return credit_pb2.ResetDueResponse(accounts_reset=count, more=more)

    async def VerifyLedger(
        self, request: credit_pb2.VerifyLedgerRequest, context: grpc.aio.ServicerContext
    ) -> credit_pb2.VerifyLedgerResponse:
        async with self._db.transaction() as conn:
            checked, differences = await store.verify(conn)
        return credit_pb2.VerifyLedgerResponse(
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
        async with self._db.autocommit() as conn:
            account = await store.get_account(conn, request.user_id)
        if account is None:
            raise NotFound("Credit account not found")
        return credit_pb2.GetAccountResponse(credits=credits_to_proto(account))


def _require_user(user_id: str) -> None:
    if not user_id or len(user_id) > 128:
        raise InvalidInput("userId is required")


def build_spec(settings: Settings) -> ServiceSpec:
    services = credit_pb2.DESCRIPTOR.services_by_name
    return database_service(
        "credit",
        settings,
        lambda db, channels: [
            (
                credit_pb2_grpc.add_CreditServiceServicer_to_server,
                CreditApi(db),
                services["CreditService"].full_name,
            ),
            (
                credit_pb2_grpc.add_CreditInternalServiceServicer_to_server,
                CreditInternalApi(db),
                services["CreditInternalService"].full_name,
            ),
        ],
    )
