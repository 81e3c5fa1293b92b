"""Hand-made tokens that a careful verifier must refuse."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

from tests.support.tokens import AUTHORIZED_PARTY, ISSUER, SigningKey


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(obj: dict[str, Any]) -> str:
    return _b64(json.dumps(obj, separators=(",", ":")).encode())


def claims(sub: str = "user_attacker") -> dict[str, Any]:
    now = int(time.time())
    return {"sub": sub, "iss": ISSUER, "azp": AUTHORIZED_PARTY, "iat": now, "exp": now + 300}


def alg_none(kid: str) -> str:
    return f"{_segment({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{_segment(claims())}."


def hs256_with_public_key(key: SigningKey) -> str:
    """The classic confusion attack: HMAC keyed with the RSA public key the server trusts."""
    signing_input = (
        f"{_segment({'alg': 'HS256', 'typ': 'JWT', 'kid': key.kid})}.{_segment(claims())}"
    )
    mac = hmac.new(key.public_pem.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


def tampered(token: str, sub: str = "user_victim") -> str:
    header, payload, signature = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data["sub"] = sub
    return f"{header}.{_segment(data)}.{signature}"


_ATTACKS: dict[str, dict[str, str | None]] = {}


def attack_tokens(trusted: SigningKey) -> dict[str, str | None]:
    """name -> Authorization header value (None: no header). Made once per key: RSA key
    generation is slow, and every one of these stays invalid however long the session runs."""
    if trusted.kid not in _ATTACKS:
        _ATTACKS[trusted.kid] = _make_attacks(trusted)
    return _ATTACKS[trusted.kid]


def _make_attacks(trusted: SigningKey) -> dict[str, str | None]:
    stranger = SigningKey(kid=trusted.kid)  # same kid, different key
    unknown = SigningKey(kid="kid-nobody-published")
    now = int(time.time())
    return {
        "missing": None,
        "empty bearer": "Bearer",
        "not a jwt": "Bearer not.a.jwt",
        "garbage": "Bearer " + "x" * 40,
        "basic scheme": "Basic dXNlcjpwYXNz",
        "expired": "Bearer " + trusted.mint("u1", lifetime=-120),
        "not yet valid": "Bearer " + trusted.mint("u1", nbf=now + 3600, iat=now, exp=now + 7200),
        "wrong issuer": "Bearer " + trusted.mint("u1", issuer="https://evil.example"),
        "wrong azp": "Bearer " + trusted.mint("u1", azp="https://evil.example"),
        "no sub": "Bearer " + trusted.mint(""),
        "tampered": "Bearer " + tampered(trusted.mint("u1")),
        "alg none": "Bearer " + alg_none(trusted.kid),
        "hs256 with public key": "Bearer " + hs256_with_public_key(trusted),
        "foreign key same kid": "Bearer " + stranger.mint("u1"),
        "unknown kid": "Bearer " + unknown.mint("u1"),
    }
