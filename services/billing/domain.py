"""Billing rules: the catalog of plans (and, later, credit packs and payments)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Plan:
    id: str
    name: str
    price_cents: int
    currency: str
    interval: str
    monthly_credits: int
    is_unlimited: bool
    features: tuple[str, ...]
