"""Billing servicers: proto <-> domain translation only."""

from __future__ import annotations

import grpc

from services.billing.catalog import PriceCatalog
from services.billing.domain import CreditPack, Payment, Plan
from services.billing.payments import Billing
from services.billing.plan_changes import PlanChanges
from services.billing.webhooks import Webhooks
from services.kit.access import Access
from services.kit.context import current_identity
from services.kit.errors import InvalidInput
from services.kit.pagination import decode_cursor, page_and_cursor, page_limit
from services.kit.proto_time import to_timestamp
from services.kit.transport import IDEMPOTENCY_HEADER, request_header
from services.task.client import rule_to_proto
from studiox.billing.v1 import billing_pb2, billing_pb2_grpc

ACCESS = {
    "BillingService/ListPlans": Access.PUBLIC,
    "BillingService/ListPrices": Access.PUBLIC,
    # Authenticated by its Stripe signature, not a user token.
    "BillingService/HandleWebhook": Access.PUBLIC,
}
# HTTP headers reach the service as (lower-cased) gRPC metadata through the gateway.
SIGNATURE_HEADER = "stripe-signature"


def plan_to_proto(plan: Plan) -> billing_pb2.Plan:
    return billing_pb2.Plan(
        id=plan.id,
        name=plan.name,
        price=plan.price_cents,
        currency=plan.currency,
        interval=plan.interval,
        monthly_credits=plan.monthly_credits,
        is_unlimited=plan.is_unlimited,
        features=plan.features,
    )


def pack_to_proto(pack: CreditPack) -> billing_pb2.CreditPack:
    return billing_pb2.CreditPack(
        id=pack.id,
        name=pack.name,
        credits=pack.credits,
        price=pack.price_cents,
        currency=pack.currency,
    )


def payment_to_proto(payment: Payment) -> billing_pb2.Payment:
    return billing_pb2.Payment(
        id=str(payment.id),
        amount=payment.amount_cents,
        currency=payment.currency,
        status=payment.shown_status,
        kind=payment.kind.value,
        credits=payment.credits,
        plan_name=payment.plan_id or "",
        created_at=to_timestamp(payment.created_at),
        refunded_amount=payment.refunded_cents,
        dispute_status=payment.dispute_status or "",
        credits_clawed_back=payment.clawed_credits,
    )


class BillingApi(billing_pb2_grpc.BillingServiceServicer):
    def __init__(
        self, billing: Billing, plans: PlanChanges, webhooks: Webhooks, prices: PriceCatalog
    ) -> None:
        self._billing = billing
        self._plans = plans
        self._webhooks = webhooks
        self._prices = prices

    async def ListPrices(
        self, request: billing_pb2.ListPricesRequest, context: grpc.aio.ServicerContext
    ) -> billing_pb2.ListPricesResponse:
        return billing_pb2.ListPricesResponse(
            success=True,
            prices=[
                billing_pb2.TaskPrice(
                    type=p.type,
                    cost=p.cost,
                    plans=p.plans,
                    rule=rule_to_proto(p.rule) if p.rule else None,
                )
                for p in await self._prices.prices()
            ],
        )

    async def ListPlans(
        self, request: billing_pb2.ListPlansRequest, context: grpc.aio.ServicerContext
    ) -> billing_pb2.ListPlansResponse:
        plans, packs = await self._billing.catalog()
        return billing_pb2.ListPlansResponse(
            success=True,
            plans=[plan_to_proto(p) for p in plans],
            credit_packs=[pack_to_proto(p) for p in packs],
        )

    async def PurchaseCredits(
        self, request: billing_pb2.PurchaseCreditsRequest, context: grpc.aio.ServicerContext
    ) -> billing_pb2.PurchaseCreditsResponse:
        started = await self._billing.purchase_credits(
            current_identity(),
            pack_id=request.pack_id,
            credits=request.credits,
            payment_method_id=request.payment_method_id,
            client_key=request_header(context, IDEMPOTENCY_HEADER),
        )
        return billing_pb2.PurchaseCreditsResponse(
            success=True,
            checkout_url=started.checkout_url,
            session_id=started.session_id,
            payment_intent_id=started.payment_intent_id,
            status=started.status,
            credits=started.credits,
            client_secret=started.client_secret,
        )

    async def UpgradePlan(
        self, request: billing_pb2.UpgradePlanRequest, context: grpc.aio.ServicerContext
    ) -> billing_pb2.UpgradePlanResponse:
        started = await self._plans.change_plan(
            current_identity(), request.plan_name, request_header(context, IDEMPOTENCY_HEADER)
        )
        response = billing_pb2.UpgradePlanResponse(
            success=True,
            message=started.message,
            checkout_url=started.checkout_url,
            session_id=started.session_id,
            status=started.status,
            plan_name=started.plan_id,
        )
        if started.effective_at is not None:
            response.effective_at.CopyFrom(to_timestamp(started.effective_at))
        return response

    async def ListPayments(
        self, request: billing_pb2.ListPaymentsRequest, context: grpc.aio.ServicerContext
    ) -> billing_pb2.ListPaymentsResponse:
        limit = page_limit(request.limit)
        rows = await self._billing.history(
            current_identity().user_id, limit=limit + 1, before_id=decode_cursor(request.cursor)
        )
        page, cursor = page_and_cursor(rows, limit, lambda p: p.id)
        return billing_pb2.ListPaymentsResponse(
            success=True,
            count=len(page),
            payments=[payment_to_proto(p) for p in page],
            next_cursor=cursor,
        )

    async def HandleWebhook(
        self, request: billing_pb2.HandleWebhookRequest, context: grpc.aio.ServicerContext
    ) -> billing_pb2.HandleWebhookResponse:
        await self._webhooks.handle(request.body.data, request_header(context, SIGNATURE_HEADER))
        return billing_pb2.HandleWebhookResponse(received=True)


class BillingInternalApi(billing_pb2_grpc.BillingInternalServiceServicer):
    def __init__(self, billing: Billing) -> None:
        self._billing = billing

    async def GetPlan(
        self, request: billing_pb2.GetPlanRequest, context: grpc.aio.ServicerContext
    ) -> billing_pb2.GetPlanResponse:
        if not request.plan_id:
            raise InvalidInput("planId is required")
        return billing_pb2.GetPlanResponse(
            plan=plan_to_proto(await self._billing.plan(request.plan_id))
        )
