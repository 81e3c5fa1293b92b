"""User servicers: proto <-> domain translation only."""

from __future__ import annotations

from services.kit.db import Database
from services.kit.server import ServiceSpec
from services.kit.settings import Settings
from services.kit.spec import database_service
from studiox.user.v1 import user_pb2, user_pb2_grpc


class UserApi(user_pb2_grpc.UserServiceServicer):
    def __init__(self, db: Database) -> None:
        self._db = db


class UserInternalApi(user_pb2_grpc.UserInternalServiceServicer):
    def __init__(self, db: Database) -> None:
        self._db = db


def build_spec(settings: Settings) -> ServiceSpec:
    services = user_pb2.DESCRIPTOR.services_by_name
    return database_service(
        "user",
        settings,
        lambda db: [
            (
                user_pb2_grpc.add_UserServiceServicer_to_server,
                UserApi(db),
                services["UserService"].full_name,
            ),
            (
                user_pb2_grpc.add_UserInternalServiceServicer_to_server,
                UserInternalApi(db),
                services["UserInternalService"].full_name,
            ),
        ],
    )
