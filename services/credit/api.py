"""Credit servicers: proto <-> domain translation only."""

from __future__ import annotations

from services.kit.db import Database
from services.kit.server import ServiceSpec
from services.kit.settings import Settings
from services.kit.spec import database_service
from studiox.credit.v1 import credit_pb2, credit_pb2_grpc


class CreditApi(credit_pb2_grpc.CreditServiceServicer):
    def __init__(self, db: Database) -> None:
        self._db = db


class CreditInternalApi(credit_pb2_grpc.CreditInternalServiceServicer):
    def __init__(self, db: Database) -> None:
        self._db = db


def build_spec(settings: Settings) -> ServiceSpec:
    services = credit_pb2.DESCRIPTOR.services_by_name
    return database_service(
        "credit",
        settings,
        lambda db: [
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
