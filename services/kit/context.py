"""The request-scoped context, in one place: the request id (carried through logs and downstream
calls) and the authenticated caller, both set by the server interceptor for each RPC."""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from services.kit.errors import Unauthenticated

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")


def new_request_id() -> str:
    return uuid.uuid4().hex


def current_request_id() -> str:
    return request_id_var.get()


@dataclass(frozen=True)
class Identity:
    user_id: str
    email: str | None = None
    name: str | None = None
    claims: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


_identity: ContextVar[Identity | None] = ContextVar("identity", default=None)


def current_identity() -> Identity:
    """The authenticated caller of the current RPC (set by the server interceptor)."""
    identity = _identity.get()
    if identity is None:
        raise Unauthenticated()
    return identity


def set_identity(identity: Identity | None) -> None:
    _identity.set(identity)
