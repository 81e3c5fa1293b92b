"""Support operations on credits: grant, void, show. Served twice: to `studiox credits` through the
internal service (the CLI names its actor), and to staff through the gateway by CreditAdminService,
whose every method needs a Clerk session carrying the admin role (Access.ADMIN); the actor is then
the caller's user id, whatever the request says."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc

from services.credit.admin_rules import admin_grant
from services.credit.grants import Grants
from services.credit.ledger import Ledger
from services.credit.messages import credits_to_proto, entry_to_proto, grant_to_proto
from services.kit.context import current_identity
from services.kit.errors import InvalidInput, NotFound
from services.kit.proto_time import from_timestamp
from services.kit.transport import IDEMPOTENCY_HEADER, request_header, set_http_status
from studiox.credit.v1 import credit_pb2, credit_pb2_grpc

MAX_CLIENT_KEY_LENGTH = 150


def _client_key(key: str) -> str:
    if len(key) > MAX_CLIENT_KEY_LENGTH:
        raise InvalidInput(f"idempotencyKey must be at most {MAX_CLIENT_KEY_LENGTH} characters")
    return key.strip()


def _grant_id(raw: str) -> int:
    """A grant id; anything else is 'not found'."""
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise NotFound("Grant not found")
    return int(raw)


async def grant_credits(
    ledger: Ledger, grants: Grants, request: credit_pb2.GrantCreditsRequest, actor: str
) -> credit_pb2.GrantCreditsResponse:
    now = datetime.now(UTC)
    wanted = admin_grant(
        user_id=request.user_id,
        amount=request.amount,
        category=request.category,
        reason=request.reason,
        actor=actor,
        now=now,
        expires_at=from_timestamp(request.expires_at) if request.HasField("expires_at") else None,
        expires_in=request.expires_in,
        priority=request.priority if request.HasField("priority") else None,
    )
    posting = await grants.admin_grant(wanted, _client_key(request.idempotency_key))
    view = await ledger.show(wanted.user_id)
    reply = credit_pb2.GrantCreditsResponse(
        success=True,
        entry=entry_to_proto(posting.entry),
        remaining_credits=posting.remaining_credits,
        applied=posting.applied,
    )
    created = next(
        (g for g in view.grants if g.id in {d.grant_id for d in posting.entry.grants}), None
    )
    if created is not None:
        reply.grant.CopyFrom(grant_to_proto(created, view.account, audit=True))
    return reply


async def void_grant(
    grants: Grants, request: credit_pb2.VoidGrantRequest, actor: str
) -> credit_pb2.VoidGrantResponse:
    if not actor:
        raise InvalidInput("actor is required")
    posting = await grants.void(
        grant_id=_grant_id(request.grant_id),
        reason=request.reason,
        actor=actor,
        client_key=_client_key(request.idempotency_key),
    )
    return credit_pb2.VoidGrantResponse(
        success=True,
        entry=entry_to_proto(posting.entry),
        remaining_credits=posting.remaining_credits,
        applied=posting.applied,
    )


async def show_account(
    ledger: Ledger, request: credit_pb2.ShowAccountRequest
) -> credit_pb2.ShowAccountResponse:
    if not request.user_id or len(request.user_id) > 128:
        raise InvalidInput("userId is required")
    view = await ledger.show(request.user_id)
    live = [g for g in view.grants if g.is_live(datetime.now(UTC))]
    return credit_pb2.ShowAccountResponse(
        success=True,
        credits=credits_to_proto(view.account, live, view.reserved),
        grants=[grant_to_proto(g, view.account, audit=True) for g in view.grants],
        entries=[
            credit_pb2.AuditEntry(entry=entry_to_proto(e), actor=e.actor, reason=e.reason)
            for e in view.entries
        ],
    )


class CreditAdminApi(credit_pb2_grpc.CreditAdminServiceServicer):
    def __init__(self, ledger: Ledger, grants: Grants) -> None:
        self._ledger = ledger
        self._grants = grants

    @staticmethod
    def _actor() -> str:
        return f"admin:{current_identity().user_id}"

    async def GrantCredits(
        self, request: credit_pb2.GrantCreditsRequest, context: grpc.aio.ServicerContext
    ) -> credit_pb2.GrantCreditsResponse:
        key = request_header(context, IDEMPOTENCY_HEADER)
        if key:
            request.idempotency_key = key
        reply = await grant_credits(self._ledger, self._grants, request, self._actor())
        if reply.applied:
            await set_http_status(context, 201)
        return reply

    async def VoidGrant(
        self, request: credit_pb2.VoidGrantRequest, context: grpc.aio.ServicerContext
    ) -> credit_pb2.VoidGrantResponse:
        key = request_header(context, IDEMPOTENCY_HEADER)
        if key:
            request.idempotency_key = key
        return await void_grant(self._grants, request, self._actor())

    async def ShowAccount(
        self, request: credit_pb2.ShowAccountRequest, context: grpc.aio.ServicerContext
    ) -> credit_pb2.ShowAccountResponse:
        return await show_account(self._ledger, request)
