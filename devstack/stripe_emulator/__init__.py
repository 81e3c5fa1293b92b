"""A local Stripe emulator on 127.0.0.1 for the real `stripe` library (pointed at it through
STRIPE_API_BASE), used by the tests and by the dev stack: customers, Checkout Sessions,
PaymentIntents, subscriptions, invoices and refunds over Stripe's form-encoded v1 API, with
Stripe's error shapes and its Idempotency-Key rules (the same key with the same parameters answers
the first response again; with other parameters, an idempotency_error).

What Stripe does on its own side (a customer paying on the Checkout page, a renewal, the end of a
period) is done by helper methods that change the state and queue the events Stripe would send;
`sign()` signs an event body exactly as Stripe does (`t=<unix>,v1=<hex hmac_sha256>`).

The emulator is built in layers, each a module that uses only the ones before it: `wire` (keys,
errors, form encoding, signatures), `state` (the objects it holds and the events it queues),
`objects` (Stripe's objects as its API builds them), `saved_cards`, `stripe_side` (what Stripe
does on its own), and `emulator` (the HTTP API and its routes).
"""

from devstack.stripe_emulator.emulator import StripeEmulator
from devstack.stripe_emulator.wire import (
    API_VERSION,
    PM_3DS,
    PM_DECLINED,
    PM_VISA,
    PRICE_ENTERPRISE,
    PRICE_PRO,
    SECRET_KEY,
    WEBHOOK_SECRET,
    Json,
    Recorded,
    StripeFailure,
    answer_api,
    body_of,
    not_found,
    parse_form,
    sign,
)

__all__ = [
    "API_VERSION",
    "PM_3DS",
    "PM_DECLINED",
    "PM_VISA",
    "PRICE_ENTERPRISE",
    "PRICE_PRO",
    "SECRET_KEY",
    "WEBHOOK_SECRET",
    "Json",
    "Recorded",
    "StripeEmulator",
    "StripeFailure",
    "answer_api",
    "body_of",
    "not_found",
    "parse_form",
    "sign",
]
