"""The emulator's wire: Stripe's credentials and test objects of this emulator, its error
shape, its form encoding, its webhook signature, and one API request over HTTP."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from devstack.http_server import QuietHandler
from services.credit.domain import add_months

API_VERSION = "2026-10-28.endive"
# Test-mode credentials of the emulator only: nothing real is ever signed or paid with them.
SECRET_KEY = "sk_test_studiox_double"  # noqa: S105
WEBHOOK_SECRET = "whsec_studiox_double"  # noqa: S105
PRICE_PRO = "price_pro_monthly"
PRICE_ENTERPRISE = "price_enterprise_monthly"
# Stripe's test payment methods usable by any customer.
PM_VISA = "pm_card_visa"
PM_DECLINED = "pm_card_chargeDeclined"
PM_3DS = "pm_card_authenticationRequired"

Json = dict[str, Any]


class StripeFailure(Exception):
    def __init__(self, status: int, kind: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"type": kind, "message": message, **extra}}


def not_found(kind: str, object_id: str) -> StripeFailure:
    return StripeFailure(
        404,
        "invalid_request_error",
        f"No such {kind}: '{object_id}'",
        code="resource_missing",
        param="id",
    )


def sign(payload: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """The Stripe-Signature header Stripe sends with `payload`."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


# Answers one Stripe API request: (method, path, params, authorization, idempotency key) ->
# (status, body, replayed), StripeEmulator.handle's signature.
ApiHandler = Callable[[str, str, Json, str, str | None], tuple[int, Json, bool]]


def answer_api(request: QuietHandler, handle: ApiHandler, body: str) -> None:
    """One Stripe API request over HTTP, as Stripe reads it (form-encoded parameters in the body or
    the query, the key, the idempotency key) and answers it (JSON, `request-id`, and
    `idempotent-replayed` for a replay); the emulator's server and the local Stripe both use it."""
    url = urlsplit(request.path)
    status, payload, replayed = handle(
        request.command,
        url.path,
        parse_form(body or url.query),
        request.headers.get("authorization", ""),
        request.headers.get("idempotency-key"),
    )
    headers = {"request-id": f"req_{secrets.token_hex(6)}"}
    if replayed:
        headers["idempotent-replayed"] = "true"
    request.send_json(status, payload, headers)


def parse_form(body: str) -> Json:
    """Stripe's form encoding (`a[b][0][c]=v`) back into nested dicts and lists."""
    root: Json = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        parts = re.findall(r"[^\[\]]+", key)
        node: Any = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    parsed: Json = _listify(root)
    return parsed


def _listify(node: Any) -> Any:
    if isinstance(node, dict):
        converted = {k: _listify(v) for k, v in node.items()}
        if converted and all(k.isdigit() for k in converted):
            return [converted[k] for k in sorted(converted, key=int)]
        return converted
    return node


def as_bool(value: Any) -> bool:
    return str(value).lower() == "true"


@dataclass
class Recorded:
    method: str
    path: str
    params: Json
    idempotency_key: str | None


def expansions(params: Json) -> set[str]:
    expand = params.get("expand") or []
    return {str(e) for e in (expand if isinstance(expand, list) else [expand])}


def listing(found: list[Json], url: str) -> Json:
    """A list endpoint's answer, all of it on one page (the emulator never holds more)."""
    return {"object": "list", "data": found, "has_more": False, "url": url}


def plus_month(unix: int) -> int:
    moment = datetime.fromtimestamp(unix, UTC)
    return int(add_months(moment, 1).timestamp())


def body_of(event: Json) -> bytes:
    return json.dumps(event, separators=(",", ":")).encode()
