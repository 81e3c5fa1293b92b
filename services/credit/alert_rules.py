"""Rules of balance alerts and auto top-up crossings, free of gRPC and SQL.

`crossings` is the rule the trigger `credit.watch_balance` (migration 0004) applies in SQL to every
balance change; tests run both on the same cases."""

from __future__ import annotations

from enum import StrEnum

from services.kit.errors import InvalidInput

LOW = "credits.low"
DEPLETED = "credits.depleted"
TOPUP = "topup"
# Alerts users see (GET /api/users/alerts); the first two come from the trigger.
ALERT_KINDS = (LOW, DEPLETED, "topup.failed", "grant.expiring")
RAISED_KINDS = frozenset({"topup.failed"})  # what other services may raise
MAX_THRESHOLD = 100_000_000
MAX_ALERT_MESSAGE = 300
MAX_SOURCE_KEY = 200


class Watch(StrEnum):
    LOW = LOW
    DEPLETED = DEPLETED
    TOPUP = TOPUP


def default_low_threshold(monthly_allowance: int) -> int:
    """The plan's low-balance threshold: a tenth of its monthly allowance, at least 1."""
    return max(1, monthly_allowance // 10)


def crossings(
    before: int,
    after: int,
    *,
    low: int | None,
    topup: int | None,
    monthly_allowance: int,
    unlimited: bool,
) -> list[Watch]:
    """What a balance change from `before` to `after` crosses: the low-balance threshold (the
    user's, else the plan's), zero, the auto top-up threshold (if armed). A crossing is going from
    at-or-above to below, so each threshold fires once until the balance rises to it again."""
    if unlimited or after >= before:
        return []
    found = []
    low_at = default_low_threshold(monthly_allowance) if low is None else low
    if low_at > 0 and before >= low_at > after:
        found.append(Watch.LOW)
    if before > 0 and after == 0:
        found.append(Watch.DEPLETED)
    if topup is not None and before >= topup > after:
        found.append(Watch.TOPUP)
    return found


def check_threshold(value: int) -> int:
    if not 0 <= value <= MAX_THRESHOLD:
        raise InvalidInput(f"threshold must be between 0 and {MAX_THRESHOLD}")
    return value


def check_raised(kind: str, message: str, source_key: str) -> None:
    if kind not in RAISED_KINDS:
        raise InvalidInput(f"kind must be one of: {', '.join(sorted(RAISED_KINDS))}")
    if not message or len(message) > MAX_ALERT_MESSAGE:
        raise InvalidInput(f"message must be 1..{MAX_ALERT_MESSAGE} characters")
    if not source_key or len(source_key) > MAX_SOURCE_KEY:
        raise InvalidInput(f"sourceKey must be 1..{MAX_SOURCE_KEY} characters")
