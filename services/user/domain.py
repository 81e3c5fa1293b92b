"""User profile rules, free of gRPC and SQL."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from services.kit.errors import InvalidInput

MAX_EMAIL_LENGTH = 254
MAX_NAME_LENGTH = 100
SIGNUP_PLAN = "free"
# Pragmatic: one @, no spaces or control characters, a dot in the domain. Deliverability is
# Clerk's business. (Requests are checked for NUL at the boundary; token claims, for GetMe, here.)
_EMAIL = re.compile(r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s.\x00-\x1f\x7f]+$")


@dataclass(frozen=True)
class Profile:
    id: str
    email: str | None
    name: str | None
    credits_ready: bool
    created_at: datetime


def clean_email(raw: str) -> str:
    email = raw.strip()
    if not email:
        raise InvalidInput("email is required")
    if len(email) > MAX_EMAIL_LENGTH or not _EMAIL.match(email):
        raise InvalidInput("email is not a valid email address")
    local, _, domain = email.rpartition("@")
    return f"{local}@{domain.lower()}"


def clean_name(raw: str | None) -> str | None:
    if raw is None:
        return None
    name = raw.strip()
    if not name:
        return None
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInput(f"name must be at most {MAX_NAME_LENGTH} characters")
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        raise InvalidInput("name must not contain control characters")
    return name


def signup_key(user_id: str) -> str:
    """Idempotency key of the signup's plan placement: one Free grant per user, ever."""
    return f"signup:{user_id}"
