"""Webhook deliveries as Prometheus counters, by event type and what became of them."""

from __future__ import annotations

from prometheus_client import Counter

WEBHOOK_EVENTS = Counter(
    "studiox_webhook_events_total",
    "Stripe webhook deliveries: processed, duplicate, ignored (nothing to do), refused "
    "(objects not matching our records or Stripe's; acknowledged, no effect), rejected "
    "(signature, timestamp or envelope; 400), error (effect failed; Stripe retries)",
    ["type", "outcome"],
)
