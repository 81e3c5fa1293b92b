"""User servicers: proto <-> domain translation only."""

from __future__ import annotations

import grpc

from services.kit.context import current_identity
from services.kit.errors import InvalidInput
from services.kit.proto_time import to_timestamp
from services.kit.transport import set_http_status
from services.user.onboarding import Member, Onboarding
from studiox.user.v1 import user_pb2, user_pb2_grpc


def user_to_proto(member: Member) -> user_pb2.User:
    profile, standing = member.profile, member.standing
    return user_pb2.User(
        id=profile.id,
        email=profile.email or "",
        name=profile.name or "",
        plan_name=standing.plan_id,
        created_at=to_timestamp(profile.created_at),
        plan=user_pb2.UserPlan(
            id=standing.plan_id,
            name=standing.plan_name,
            monthly_credits=standing.monthly_credits,
            is_unlimited=standing.is_unlimited,
        ),
        current_credits=standing.current_credits,
        credit_reset_at=to_timestamp(standing.credit_reset_at),
    )


class UserApi(user_pb2_grpc.UserServiceServicer):
    def __init__(self, onboarding: Onboarding) -> None:
        self._onboarding = onboarding

    async def GetMe(
        self, request: user_pb2.GetMeRequest, context: grpc.aio.ServicerContext
    ) -> user_pb2.GetMeResponse:
        member = await self._onboarding.me(current_identity())
        return user_pb2.GetMeResponse(success=True, user=user_to_proto(member))

    async def InitializeUser(
        self, request: user_pb2.InitializeUserRequest, context: grpc.aio.ServicerContext
    ) -> user_pb2.InitializeUserResponse:
        name = request.name if request.HasField("name") else None
        member = await self._onboarding.initialize(current_identity(), request.email, name)
        if member.created:
            await set_http_status(context, 201)
        return user_pb2.InitializeUserResponse(
            success=True, user=user_to_proto(member), created=member.created
        )


class UserInternalApi(user_pb2_grpc.UserInternalServiceServicer):
    def __init__(self, onboarding: Onboarding) -> None:
        self._onboarding = onboarding

    async def GetUser(
        self, request: user_pb2.GetUserRequest, context: grpc.aio.ServicerContext
    ) -> user_pb2.GetUserResponse:
        if not request.user_id:
            raise InvalidInput("userId is required")
        return user_pb2.GetUserResponse(
            user=user_to_proto(await self._onboarding.get(request.user_id))
        )
