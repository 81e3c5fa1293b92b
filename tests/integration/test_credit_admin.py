"""Support operations: grants and voids recorded with actor and reason, idempotent by key, and the
admin API reachable only with a session carrying the admin role."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest

from services.kit.errors import reason_of
from studiox.credit.v1 import credit_pb2, credit_pb2_grpc
from tests.integration.test_credit_ledger import assert_ledger_verifies
from tests.support.cluster import Cluster, internal_metadata
from tests.support.credit import FREE, CreditClient
from tests.support.tokens import DEFAULT_KEY, bearer, new_user_id


def _grant(user: str, amount: int, **fields: Any) -> credit_pb2.AdminGrantCreditsRequest:
    actor = fields.pop("actor", "cli:alice")
    values: dict[str, Any] = {
        "user_id": user,
        "amount": amount,
        "reason": "Ticket #123: render farm outage",
        **fields,
    }
    return credit_pb2.AdminGrantCreditsRequest(
        request=credit_pb2.GrantCreditsRequest(**values), actor=actor
    )


async def _admin_grant(
    credit: CreditClient, request: credit_pb2.AdminGrantCreditsRequest
) -> credit_pb2.GrantCreditsResponse:
    reply = await credit.stub.AdminGrantCredits(request, metadata=internal_metadata())
    return reply.response


async def _void(
    credit: CreditClient, grant_id: str, reason: str, actor: str
) -> credit_pb2.VoidGrantResponse:
    request = credit_pb2.AdminVoidGrantRequest(
        request=credit_pb2.VoidGrantRequest(grant_id=grant_id, reason=reason), actor=actor
    )
    return (await credit.stub.AdminVoidGrant(request, metadata=internal_metadata())).response


async def test_grants_and_voids_are_audited_and_idempotent(
    cluster: Cluster, credit: CreditClient
) -> None:
    user = await credit.open_account(FREE)
    request = _grant(user, 25, category="compensation", expires_in="30d", idempotency_key="t123")
    first = await _admin_grant(credit, request)
    again = await _admin_grant(credit, request)
    assert (first.applied, again.applied) == (True, False)
    assert again.entry.id == first.entry.id
    assert first.grant.category == "compensation"
    assert first.grant.priority == 30
    expires = first.grant.expires_at.ToDatetime(tzinfo=UTC)
    assert abs(expires - (datetime.now(UTC) + timedelta(days=30))) < timedelta(minutes=1)
    assert first.remaining_credits == 35
    with pytest.raises(grpc.aio.AioRpcError) as other:
        await _admin_grant(
            credit, _grant(user, 26, category="compensation", idempotency_key="t123")
        )
    assert other.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    voided = await _void(credit, first.grant.id, "Granted to the wrong user", "cli:bob")
    assert (voided.applied, voided.entry.type, voided.entry.amount) == (True, "void", -25)
    assert not (await _void(credit, first.grant.id, "Granted to the wrong user", "cli:bob")).applied

    shown = (
        await credit.stub.AdminShowAccount(
            credit_pb2.AdminShowAccountRequest(request=credit_pb2.ShowAccountRequest(user_id=user)),
            metadata=internal_metadata(),
        )
    ).response
    audit = [(e.entry.type, e.actor, e.reason) for e in shown.entries if e.actor]
    assert audit == [
        ("void", "cli:bob", "Granted to the wrong user"),
        ("credit_add", "cli:alice", "Ticket #123: render farm outage"),
    ]
    grant = next(g for g in shown.grants if g.id == first.grant.id)
    assert (grant.remaining, grant.closed_reason) == (0, "voided")
    assert shown.credits.current_credits == 10
    await assert_ledger_verifies(credit)


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"category": "purchased"}, "category"),
        ({"reason": "  "}, "reason"),
        ({"expires_in": "soon"}, "expiresIn"),
        ({"expires_in": "0d"}, "expiresIn"),
        ({"priority": 1001}, "priority"),
        ({"actor": ""}, "actor"),
    ],
)
async def test_bad_admin_grants_are_refused(
    credit: CreditClient, fields: dict[str, object], why: str
) -> None:
    user = await credit.open_account(FREE)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _admin_grant(credit, _grant(user, 5, **fields))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert why in (err.value.details() or "")


async def test_an_admin_grant_needs_an_amount(credit: CreditClient) -> None:
    user = await credit.open_account(FREE)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _admin_grant(credit, _grant(user, 0))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_only_promotional_and_compensation_grants_can_be_voided(
    cluster: Cluster, credit: CreditClient
) -> None:
    user = await credit.open_account(FREE)
    allowance = cluster.scalar("SELECT id FROM credit.grants WHERE user_id = %s", user)
    for grant_id, code in (
        (str(allowance), grpc.StatusCode.INVALID_ARGUMENT),
        ("999999999", grpc.StatusCode.NOT_FOUND),
        ("not-a-number", grpc.StatusCode.NOT_FOUND),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await _void(credit, grant_id, "x", "cli:a")
        assert err.value.code() == code


async def test_the_admin_api_needs_the_admin_role(cluster: Cluster, credit: CreditClient) -> None:
    user = await credit.open_account(FREE)
    stub = credit_pb2_grpc.CreditAdminServiceStub(cluster.channel("credit"))
    staff = new_user_id()
    admin = bearer(DEFAULT_KEY.mint(staff, metadata={"role": "admin"}))
    request = credit_pb2.GrantCreditsRequest(
        user_id=user, amount=7, reason="Launch promo", expires_in="7d"
    )

    reply = await stub.GrantCredits(request, metadata=(*admin, ("idempotency-key", "promo-1")))
    assert reply.applied
    shown = await stub.ShowAccount(credit_pb2.ShowAccountRequest(user_id=user), metadata=admin)
    assert [(e.actor, e.reason) for e in shown.entries if e.actor] == [
        (f"admin:{staff}", "Launch promo")
    ]

    for metadata in (
        bearer(DEFAULT_KEY.mint(user)),  # an ordinary user
        bearer(DEFAULT_KEY.mint(user, metadata={"role": "member"})),
        bearer(DEFAULT_KEY.mint(user, org_role="org:admin")),  # not the configured claim
        (*bearer(DEFAULT_KEY.mint(user)), *internal_metadata()),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.GrantCredits(request, metadata=metadata)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert reason_of(err.value) == "PERMISSION_DENIED"
    for metadata in ((), internal_metadata()):
        with pytest.raises(grpc.aio.AioRpcError) as anonymous:
            await stub.ShowAccount(credit_pb2.ShowAccountRequest(user_id=user), metadata=metadata)
        assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert (await credit.account(user)).current_credits == 17
