"""RS256 keys and Clerk-shaped session tokens minted by the tests themselves."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ISSUER = "https://clerk.studiox.test"
AUTHORIZED_PARTY = "http://localhost:5173"


@dataclass
class SigningKey:
    kid: str = field(default_factory=lambda: f"test-{uuid.uuid4().hex[:8]}")

    @cached_property
    def private(self) -> rsa.RSAPrivateKey:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    @property
    def private_pem(self) -> str:
        return self.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    @property
    def public_pem(self) -> str:
        return (
            self.private.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def jwk(self) -> dict[str, Any]:
        data: dict[str, Any] = jwt.algorithms.RSAAlgorithm.to_jwk(
            self.private.public_key(), as_dict=True
        )
        return {**data, "kid": self.kid, "use": "sig", "alg": "RS256"}

    def mint(
        self,
        sub: str,
        *,
        issuer: str = ISSUER,
        azp: str | None = AUTHORIZED_PARTY,
        lifetime: int = 300,
        headers: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        now = int(time.time())
        payload: dict[str, Any] = {
            "sub": sub,
            "iss": issuer,
            "iat": now,
            "nbf": now - 5,
            "exp": now + lifetime,
            "sid": "sess_test",
            **claims,
        }
        if azp is not None:
            payload["azp"] = azp
        return jwt.encode(
            payload,
            self.private_pem,
            algorithm="RS256",
            headers={"kid": self.kid, **(headers or {})},
        )


DEFAULT_KEY = SigningKey(kid="test-default")


def new_user_id() -> str:
    return f"user_{uuid.uuid4().hex[:20]}"


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)
