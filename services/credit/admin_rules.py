"""What support staff may ask for, free of gRPC and SQL: a promotional or compensation grant with
a reason and an optional expiry, and a void with a reason."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.credit.domain import (
    ADMIN_CATEGORIES,
    DEFAULT_PRIORITY,
    Category,
    parse_category,
    validate_amount,
    validate_priority,
)
from services.kit.errors import InvalidInput

MAX_REASON_LENGTH = 500
MAX_ACTOR_LENGTH = 200
# The furthest an admin may set an expiry: anything later is a typo, not a policy.
MAX_EXPIRY = timedelta(days=3660)


@dataclass(frozen=True)
class AdminGrant:
    """A grant support staff asked for, validated."""

    user_id: str
    category: Category
    amount: int
    priority: int
    expires_at: datetime | None
    reason: str
    actor: str


_DURATION = re.compile(r"(\d{1,7})([smhdw])")
_ISO_DURATION = re.compile(
    r"p(?:(\d{1,5})w)?(?:(\d{1,5})d)?(?:t(?:(\d{1,6})h)?(?:(\d{1,7})m)?(?:(\d{1,8})s)?)?"
)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_ISO_UNITS = (604800, 86400, 3600, 60, 1)


def parse_duration(raw: str) -> timedelta:
    """`30d`, `12h`, `2w`, `1d12h`, `90m`, `45s`, or ISO 8601 (`P30D`, `PT12H`)."""
    text = raw.strip().lower()
    iso = _ISO_DURATION.fullmatch(text)
    if iso is not None and not text.endswith(("p", "t")):
        seconds = sum(int(g or 0) * unit for g, unit in zip(iso.groups(), _ISO_UNITS, strict=True))
    elif text and _DURATION.sub("", text) == "":
        seconds = sum(int(n) * _UNITS[unit] for n, unit in _DURATION.findall(text))
    else:
        raise InvalidInput("expiresIn must be a duration such as 30d, 12h, 2w or P30D")
    if seconds <= 0:
        raise InvalidInput("expiresIn must be a positive duration")
    return timedelta(seconds=seconds)


def admin_grant(
    *,
    user_id: str,
    amount: int,
    category: str,
    reason: str,
    actor: str,
    now: datetime,
    expires_at: datetime | None = None,
    expires_in: str = "",
    priority: int | None = None,
) -> AdminGrant:
    """Check what support staff asked for: a promotional or compensation grant, with a reason,
    expiring in the future (at most ~10 years ahead) if at all."""
    if not user_id or len(user_id) > 128:
        raise InvalidInput("userId is required")
    validate_amount(amount)
    chosen = parse_category(category or Category.PROMOTIONAL.value, ADMIN_CATEGORIES)
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON_LENGTH:
        raise InvalidInput(f"reason is required (at most {MAX_REASON_LENGTH} characters)")
    if not actor or len(actor) > MAX_ACTOR_LENGTH:
        raise InvalidInput("actor is required")
    if expires_at is not None and expires_in:
        raise InvalidInput("give expiresAt or expiresIn, not both")
    if expires_in:
        expires_at = now + parse_duration(expires_in)
    if expires_at is not None and not now < expires_at <= now + MAX_EXPIRY:
        raise InvalidInput("expiresAt must be in the future (and within 10 years)")
    chosen_priority = DEFAULT_PRIORITY[chosen] if priority is None else priority
    validate_priority(chosen_priority)
    return AdminGrant(user_id, chosen, amount, chosen_priority, expires_at, reason, actor)


def check_reason(reason: str) -> str:
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON_LENGTH:
        raise InvalidInput(f"reason is required (at most {MAX_REASON_LENGTH} characters)")
    return reason
