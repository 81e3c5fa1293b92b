"""Wiring of the user service: its service layer (onboarding) with clients of billing and credit,
and the servicers over it. The servicers in `api.py` only translate; `python -m services.user`
serves what `build_spec` builds."""

from __future__ import annotations

from services.kit.clients import ServiceChannels
from services.kit.db import Database
from services.kit.server import ServiceSpec
from services.kit.settings import Settings
from services.kit.spec import Registration, database_service
from services.user.api import UserApi, UserInternalApi
from services.user.onboarding import Onboarding
from studiox.user.v1 import user_pb2, user_pb2_grpc


def _servicers(db: Database, channels: ServiceChannels) -> list[Registration]:
    onboarding = Onboarding(db, channels)
    services = user_pb2.DESCRIPTOR.services_by_name
    return [
        (
            user_pb2_grpc.add_UserServiceServicer_to_server,
            UserApi(onboarding),
            services["UserService"].full_name,
        ),
        (
            user_pb2_grpc.add_UserInternalServiceServicer_to_server,
            UserInternalApi(onboarding),
            services["UserInternalService"].full_name,
        ),
    ]


def build_spec(settings: Settings) -> ServiceSpec:
    return database_service("user", settings, _servicers)
