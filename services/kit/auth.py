"""Clerk session JWT verification (PyJWT), shared by every public RPC.

Accepted: RS256 tokens signed by a key from Clerk's JWKS (cached; refetched on an unknown `kid`, at
most once per REFETCH_INTERVAL so random kids cannot hammer Clerk) or from a configured PEM key, with
the configured issuer, valid exp/nbf (small leeway), a `sub`, and an `azp` among the authorized
parties when those are configured. In development only, tokens minted by `studiox token` with the
local stack's dev key are accepted too. Every refusal is the same bare 401; the reason is logged.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from jwt import PyJWKClient
from jwt.exceptions import PyJWKClientConnectionError, PyJWKClientError

from services.kit.context import Identity
from services.kit.errors import Unauthenticated, Unavailable
from services.kit.settings import Settings

log = logging.getLogger("studiox.auth")

ALGORITHM = "RS256"
LEEWAY_SECONDS = 10
REFETCH_INTERVAL_SECONDS = 30.0
TOKEN_CACHE_SIZE = 10_000
JWKS_CACHE_SECONDS = 300
DEV_KID = "studiox-dev"
DEV_ISSUER = "https://dev.studiox.local"


def bearer_token(metadata: dict[str, str]) -> str:
    header = metadata.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated()
    return token.strip()


class _Jwks:
    """PyJWKClient with a bound on refetches for unknown key ids."""

    def __init__(self, url: str) -> None:
        self._client = PyJWKClient(url, cache_jwk_set=True, lifespan=JWKS_CACHE_SECONDS, timeout=5)
        self._lock = threading.Lock()
        self._last_refetch = 0.0

    def key(self, kid: str) -> Any:
        try:
            found = self._find(self._client.get_signing_keys(), kid)
            if found is None and self._may_refetch():
                found = self._find(self._client.get_signing_keys(refresh=True), kid)
        except PyJWKClientConnectionError as exc:
            log.warning("JWKS unreachable: %s", exc)
            raise Unavailable("Authentication is temporarily unavailable") from exc
        except PyJWKClientError as exc:
            raise _Refused(f"jwks: {exc}") from exc
        if found is None:
            raise _Refused("unknown kid")
        return found

    @staticmethod
    def _find(keys: list[Any], kid: str) -> Any:
        return next((k.key for k in keys if k.key_id == kid), None)

    def _may_refetch(self) -> bool:
        with self._lock:
            now = time.monotonic()
            if now - self._last_refetch < REFETCH_INTERVAL_SECONDS:
                return False
            self._last_refetch = now
            return True


class VerifiedTokens:
    """Tokens already verified, until they expire: a session token is sent with every request of
    a page, and RS256 verification is the most expensive step of a cheap read. Keyed by the exact
    token string, bounded, and never trusted past `exp`."""

    def __init__(self, capacity: int = TOKEN_CACHE_SIZE) -> None:
        self._capacity = capacity
        self._items: OrderedDict[str, tuple[Identity, float]] = OrderedDict()

    def get(self, token: str) -> Identity | None:
        item = self._items.get(token)
        if item is None:
            return None
        identity, expires = item
        if time.time() >= expires:
            del self._items[token]
            return None
        self._items.move_to_end(token)
        return identity

    def put(self, token: str, identity: Identity) -> None:
        expires = identity.claims.get("exp")
        if not isinstance(expires, int | float):
            return
        self._items[token] = (identity, float(expires))
        self._items.move_to_end(token)
        while len(self._items) > self._capacity:
            self._items.popitem(last=False)


class _Refused(Exception):
    """Internal: why a token was refused (logged, never shown)."""


def make_authenticator(settings: Settings) -> Callable[[dict[str, str]], Awaitable[Identity]]:
    verifier = TokenVerifier(settings)
    cache = VerifiedTokens()

    async def authenticate(metadata: dict[str, str]) -> Identity:
        token = bearer_token(metadata)
        known = cache.get(token)
        if known is not None:
            return known
        identity = await _verify(token)
        cache.put(token, identity)
        return identity

    async def _verify(token: str) -> Identity:
        if verifier.may_fetch_keys:
            # PyJWKClient fetches synchronously when its cache is cold or stale.
            return await asyncio.to_thread(verifier.verify, token)
        return verifier.verify(token)

    return authenticate


class TokenVerifier:
    def __init__(self, settings: Settings) -> None:
        self._issuer = settings.clerk_issuer.rstrip("/") if settings.clerk_issuer else None
        self._parties = set(settings.clerk_authorized_parties)
        # Keys are parsed once: parsing a PEM costs more than verifying a signature.
        self._pem_key = (
            _public_key(settings.clerk_jwt_key.replace("\\n", "\n"))
            if settings.clerk_jwt_key
            else None
        )
        jwks_url = settings.clerk_jwks_url or (
            f"{self._issuer}/.well-known/jwks.json" if self._issuer else None
        )
        self._jwks = _Jwks(jwks_url) if jwks_url and not self._pem_key else None
        self._dev_key: Any = None
        if settings.app_env == "development" and settings.dev_jwt_public_key_file:
            path = Path(settings.dev_jwt_public_key_file)
            if path.exists():
                self._dev_key = _public_key(path.read_text())

    @property
    def may_fetch_keys(self) -> bool:
        return self._jwks is not None

    def verify(self, token: str) -> Identity:
        """Identity of a valid token; raises Unauthenticated (or Unavailable) otherwise."""
        try:
            return self._verify(token)
        except _Refused as exc:
            log.info("token refused: %s", exc)
            raise Unauthenticated() from None
        except jwt.PyJWTError as exc:
            log.info("token refused: %s", type(exc).__name__)
            raise Unauthenticated() from None

    def _verify(self, token: str) -> Identity:
        header = jwt.get_unverified_header(token)
        if header.get("alg") != ALGORITHM:
            raise _Refused(f"alg {header.get('alg')!r}")
        kid = header.get("kid")
        if kid == DEV_KID:
            if self._dev_key is None:
                raise _Refused("dev token outside development")
            key: Any = self._dev_key
            issuer = DEV_ISSUER
        elif self._issuer is None:
            raise _Refused("no Clerk issuer configured")
        elif self._pem_key is not None:
            key, issuer = self._pem_key, self._issuer
        elif self._jwks is not None and isinstance(kid, str):
            key, issuer = self._jwks.key(kid), self._issuer
        else:
            raise _Refused("no key for token")
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            issuer=issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "iss", "sub"], "verify_aud": False},
        )
        if self._parties and kid != DEV_KID and claims.get("azp") not in self._parties:
            raise _Refused(f"azp {claims.get('azp')!r}")
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject or len(subject) > 128:
            raise _Refused("bad sub")
        email = claims.get("email")
        name = claims.get("name")
        return Identity(
            user_id=subject,
            email=email if isinstance(email, str) else None,
            name=name if isinstance(name, str) else None,
            claims=claims,
        )


def _public_key(pem: str) -> Any:
    return serialization.load_pem_public_key(pem.encode())
