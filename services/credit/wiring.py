"""Wiring of the credit service: its service layers (ledger, grants, plans, reservations, alerts)
and the servicers over them. The servicers in `api.py` only translate; `python -m services.credit`
serves what `build_spec` builds."""

from __future__ import annotations

from services.credit import admin
from services.credit.alert_api import AlertApi, AlertInternalApi
from services.credit.alerts import Alerts
from services.credit.api import ACCESS, CreditApi, CreditInternalApi
from services.credit.grants import Grants
from services.credit.ledger import Ledger
from services.credit.plans import Plans
from services.credit.reservations import Reservations
from services.kit.clients import ServiceChannels
from services.kit.db import Database
from services.kit.outbox import delivery_extras
from services.kit.server import ServiceSpec
from services.kit.settings import Settings
from services.kit.spec import Registration, database_service
from studiox.credit.v1 import alerts_pb2, alerts_pb2_grpc, credit_pb2, credit_pb2_grpc


def _servicers(db: Database, channels: ServiceChannels) -> list[Registration]:
    ledger = Ledger(db)
    grants = Grants(db)
    services = credit_pb2.DESCRIPTOR.services_by_name
    return [
        (
            credit_pb2_grpc.add_CreditServiceServicer_to_server,
            CreditApi(ledger),
            services["CreditService"].full_name,
        ),
        (
            credit_pb2_grpc.add_CreditInternalServiceServicer_to_server,
            CreditInternalApi(ledger, grants, Plans(db), Reservations(db)),
            services["CreditInternalService"].full_name,
        ),
        (
            credit_pb2_grpc.add_CreditAdminServiceServicer_to_server,
            admin.CreditAdminApi(ledger, grants),
            services["CreditAdminService"].full_name,
        ),
        *_alert_servicers(db),
    ]


def _alert_servicers(db: Database) -> list[Registration]:
    alerts = Alerts(db)
    services = alerts_pb2.DESCRIPTOR.services_by_name
    return [
        (
            alerts_pb2_grpc.add_AlertServiceServicer_to_server,
            AlertApi(alerts),
            services["AlertService"].full_name,
        ),
        (
            alerts_pb2_grpc.add_AlertInternalServiceServicer_to_server,
            AlertInternalApi(alerts),
            services["AlertInternalService"].full_name,
        ),
    ]


def build_spec(settings: Settings) -> ServiceSpec:
    return database_service(
        "credit",
        settings,
        _servicers,
        access=ACCESS,
        extras=delivery_extras("credit", settings),  # the outbox's webhook deliveries
    )
