"""User initialization and profile through the real user, billing and credit services."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from studiox.user.v1 import user_pb2, user_pb2_grpc
from tests.support.cluster import Cluster, internal_metadata
from tests.support.credit import CreditClient
from tests.support.tokens import DEFAULT_KEY, bearer, new_user_id


def stub(cluster: Cluster) -> user_pb2_grpc.UserServiceStub:
    return user_pb2_grpc.UserServiceStub(cluster.channel("user"))


async def test_initialize_places_a_new_user_on_free_with_10_credits(
    cluster: Cluster, credit: CreditClient
) -> None:
    user = new_user_id()
    call = stub(cluster).InitializeUser(
        user_pb2.InitializeUserRequest(email="Ada@Example.COM", name="Ada"),
        metadata=bearer(DEFAULT_KEY.mint(user)),
    )
    reply = await call
    assert ("x-http-status", "201") in tuple(await call.initial_metadata())
    assert reply.created
    assert (reply.user.id, reply.user.email, reply.user.name) == (user, "Ada@example.com", "Ada")
    assert reply.user.plan_name == "free"
    account = await credit.account(user)
    assert (account.current_credits, account.plan_name) == (10, "free")
    days = (account.credit_reset_at.ToDatetime() - reply.user.created_at.ToDatetime()).days
    assert 28 <= days <= 31

    again_call = stub(cluster).InitializeUser(
        user_pb2.InitializeUserRequest(email="other@example.com"),
        metadata=bearer(DEFAULT_KEY.mint(user)),
    )
    again = await again_call
    assert not again.created
    assert again.user.email == "Ada@example.com"
    assert ("x-http-status", "201") not in tuple(await again_call.initial_metadata())
    assert (await credit.account(user)).current_credits == 10


async def test_20_concurrent_initializations_make_one_user_and_one_grant(
    cluster: Cluster, credit: CreditClient
) -> None:
    user = new_user_id()
    token = DEFAULT_KEY.mint(user)
    replies = await asyncio.gather(
        *(
            stub(cluster).InitializeUser(
                user_pb2.InitializeUserRequest(email="race@example.com"), metadata=bearer(token)
            )
            for _ in range(20)
        )
    )
    assert sum(r.created for r in replies) == 1
    assert {r.user.id for r in replies} == {user}
    assert cluster.scalar("SELECT count(*) FROM users.users WHERE id = %s", user) == 1
    grants = "SELECT count(*) FROM credit.entries WHERE user_id = %s AND kind = 'grant'"
    assert cluster.scalar(grants, user) == 1
    assert (await credit.account(user)).current_credits == 10
    assert list((await credit.verify()).differences) == []


async def test_me_initializes_from_token_claims(cluster: Cluster, credit: CreditClient) -> None:
    user = new_user_id()
    reply = await stub(cluster).GetMe(
        user_pb2.GetMeRequest(),
        metadata=bearer(DEFAULT_KEY.mint(user, email="claims@example.com", name="Claim")),
    )
    assert (reply.user.id, reply.user.email, reply.user.plan_name) == (
        user,
        "claims@example.com",
        "free",
    )
    assert (await credit.account(user)).current_credits == 10
    again = await stub(cluster).GetMe(
        user_pb2.GetMeRequest(), metadata=bearer(DEFAULT_KEY.mint(user))
    )
    assert again.user.email == "claims@example.com"


async def test_me_finishes_a_half_done_signup(cluster: Cluster, credit: CreditClient) -> None:
    """A crash after the profile row but before the credit account is settled by the next call."""
    user = new_user_id()
    cluster.sql("INSERT INTO users.users (id, email) VALUES (%s, 'half@example.com')", user)
    reply = await stub(cluster).GetMe(
        user_pb2.GetMeRequest(), metadata=bearer(DEFAULT_KEY.mint(user))
    )
    assert reply.user.plan_name == "free"
    assert (await credit.account(user)).current_credits == 10


@pytest.mark.parametrize(
    ("email", "name"),
    [
        ("", None),
        ("not-an-email", None),
        ("a@b", None),
        ("two@@example.com", None),
        ("spa ce@example.com", None),
        ("x" * 250 + "@example.com", None),
        ("ok@example.com", "n" * 101),
        ("ok@example.com", "bad\x00name"),
    ],
)
async def test_bad_input_is_refused_and_creates_nothing(
    cluster: Cluster, email: str, name: str | None
) -> None:
    user = new_user_id()
    request = user_pb2.InitializeUserRequest(email=email)
    if name is not None:
        request.name = name
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub(cluster).InitializeUser(request, metadata=bearer(DEFAULT_KEY.mint(user)))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert cluster.scalar("SELECT count(*) FROM users.users WHERE id = %s", user) == 0


async def test_get_user_is_internal(cluster: Cluster) -> None:
    user = new_user_id()
    await stub(cluster).InitializeUser(
        user_pb2.InitializeUserRequest(email="int@example.com"),
        metadata=bearer(DEFAULT_KEY.mint(user)),
    )
    internal = user_pb2_grpc.UserInternalServiceStub(cluster.channel("user"))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await internal.GetUser(
            user_pb2.GetUserRequest(user_id=user), metadata=bearer(DEFAULT_KEY.mint(user))
        )
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    reply = await internal.GetUser(
        user_pb2.GetUserRequest(user_id=user), metadata=internal_metadata()
    )
    assert reply.user.email == "int@example.com"
