"""Billing's view of the settings: whether Stripe is configured, which Stripe price is which plan,
and where Checkout sends the customer back to."""

from __future__ import annotations

from dataclasses import dataclass, field

from services.billing.stripe_api import ReturnUrls
from services.kit.settings import Settings


@dataclass(frozen=True)
class BillingConfig:
    webhook_secret: str | None = None
    # plan id -> Stripe price id (STRIPE_PRICE_PRO, STRIPE_PRICE_ENTERPRISE)
    plan_prices: dict[str, str] = field(default_factory=dict)
    urls: ReturnUrls = field(
        default_factory=lambda: ReturnUrls(
            success="http://localhost:5173", cancel="http://localhost:5173"
        )
    )

    @property
    def price_plans(self) -> dict[str, str]:
        return {price: plan for plan, price in self.plan_prices.items()}

    @classmethod
    def from_settings(cls, settings: Settings) -> BillingConfig:
        prices = {"pro": settings.stripe_price_pro, "enterprise": settings.stripe_price_enterprise}
        front = settings.frontend_url.rstrip("/")
        return cls(
            webhook_secret=(
                settings.stripe_webhook_secret.get_secret_value()
                if settings.stripe_webhook_secret
                else None
            ),
            plan_prices={plan: price for plan, price in prices.items() if price},
            urls=ReturnUrls(
                # Stripe replaces {CHECKOUT_SESSION_ID} with the session's id.
                success=f"{front}/billing?checkout=success&session_id={{CHECKOUT_SESSION_ID}}",
                cancel=f"{front}/billing?checkout=canceled",
            ),
        )
