"""Wiring of the billing service: the Stripe client, the service layers (payments, plan changes,
orders, fulfilment, webhooks, catalog) with clients of credit and task, and the servicers over
them. The servicers in `api.py` only translate; `python -m services.billing` serves what
`build_spec` builds."""

from __future__ import annotations

from services.billing.api import ACCESS, BillingApi, BillingInternalApi
from services.billing.autotopup import AlertClient, AutoTopUpConfig, AutoTopUps
from services.billing.catalog import PriceCatalog
from services.billing.config import BillingConfig
from services.billing.fulfilment import Fulfilment, Ledger
from services.billing.orders import Orders
from services.billing.payments import Billing
from services.billing.plan_changes import PlanChanges
from services.billing.stripe_api import StripeApi
from services.billing.topup_api import AutoTopUpApi, AutoTopUpInternalApi
from services.billing.webhooks import Webhooks
from services.kit.clients import ServiceChannels
from services.kit.db import Database
from services.kit.outbox import delivery_extras
from services.kit.server import ServiceSpec
from services.kit.settings import Settings
from services.kit.spec import Registration, database_service
from studiox.billing.v1 import (
    auto_top_up_pb2,
    auto_top_up_pb2_grpc,
    billing_pb2,
    billing_pb2_grpc,
)


def build_spec(settings: Settings) -> ServiceSpec:
    config = BillingConfig.from_settings(settings)
    stripe = (
        StripeApi(settings.stripe_secret_key.get_secret_value(), settings.stripe_api_base)
        if settings.stripe_secret_key
        else None
    )

    def servicers(db: Database, channels: ServiceChannels) -> list[Registration]:
        fulfilment = Fulfilment(db, Ledger(channels), stripe, config)
        orders = Orders(db, fulfilment, stripe)
        ledger = Ledger(channels)
        billing = Billing(db, ledger, fulfilment, orders, config)
        plans = PlanChanges(db, ledger, orders, config)
        top_ups = AutoTopUps(
            db,
            fulfilment,
            stripe,
            AlertClient(channels),
            orders.customer,
            config,
            AutoTopUpConfig(),
        )
        webhooks = Webhooks(db, fulfilment, config, saved_card=top_ups.card_saved)
        services = billing_pb2.DESCRIPTOR.services_by_name
        top_up_services = auto_top_up_pb2.DESCRIPTOR.services_by_name
        return [
            (
                billing_pb2_grpc.add_BillingServiceServicer_to_server,
                BillingApi(billing, plans, webhooks, PriceCatalog(db, channels)),
                services["BillingService"].full_name,
            ),
            (
                billing_pb2_grpc.add_BillingInternalServiceServicer_to_server,
                BillingInternalApi(billing),
                services["BillingInternalService"].full_name,
            ),
            (
                auto_top_up_pb2_grpc.add_AutoTopUpServiceServicer_to_server,
                AutoTopUpApi(top_ups),
                top_up_services["AutoTopUpService"].full_name,
            ),
            (
                auto_top_up_pb2_grpc.add_AutoTopUpInternalServiceServicer_to_server,
                AutoTopUpInternalApi(top_ups),
                top_up_services["AutoTopUpInternalService"].full_name,
            ),
        ]

    spec = database_service(
        "billing",
        settings,
        servicers,
        access=ACCESS,
        extras=delivery_extras("billing", settings),  # topup.* webhooks
    )
    if stripe is not None:
        spec.on_stop = [*spec.on_stop, stripe.close]
    return spec
