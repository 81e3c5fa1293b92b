"""Who may call which RPC. Every method is USER (Clerk token) unless declared otherwise; every method
of a `*InternalService` is INTERNAL (service credential)."""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from enum import Enum
from typing import Any

from services.kit.errors import PermissionDenied, Unauthenticated

INTERNAL_TOKEN_HEADER = "x-internal-token"  # noqa: S105 - a header name


class Access(Enum):
    PUBLIC = "public"
    USER = "user"
    INTERNAL = "internal"
    # A Clerk session whose role claim names an admin role (support staff); any other is 403.
    ADMIN = "admin"


def access_for(full_method: str, overrides: dict[str, Access]) -> Access:
    """`full_method` is `/pkg.Service/Method`; overrides are keyed by `Service/Method`."""
    service_method = full_method.rsplit(".", 1)[-1]
    if service_method in overrides:
        return overrides[service_method]
    service = service_method.split("/", 1)[0]
    return Access.INTERNAL if service.endswith("InternalService") else Access.USER


def check_internal(metadata: dict[str, str], expected: str, *, user_present: bool = False) -> None:
    """Raise unless the internal credential is present and right. Compared in constant time."""
    presented = metadata.get(INTERNAL_TOKEN_HEADER)
    if presented is None or not hmac.compare_digest(presented.encode(), expected.encode()):
        # A signed-in user asking for an internal endpoint is told no (403); anyone else is
        # unauthenticated (401).
        if user_present:
            raise PermissionDenied("This endpoint is for internal services only")
        raise Unauthenticated()


def claim_at(claims: dict[str, Any], path: str) -> Any:
    """The value at a dotted claim path (`metadata.role`), or None."""
    node: Any = claims
    for part in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def check_admin(claims: dict[str, Any], claim_paths: Sequence[str], roles: Sequence[str]) -> None:
    """Raise PermissionDenied unless one of the claims names one of the admin roles (a string, or
    a list of strings). No configured claim or role means nobody is an admin."""
    wanted = {role for role in roles if role}
    for path in claim_paths:
        value = claim_at(claims, path)
        found = value if isinstance(value, list) else [value]
        if any(isinstance(v, str) and v in wanted for v in found):
            return
    raise PermissionDenied("This endpoint is for administrators only")
