"""Key rotation through a real JWKS endpoint served on 127.0.0.1."""

from __future__ import annotations

import pytest

from services.kit.auth import TokenVerifier
from services.kit.errors import Unauthenticated, Unavailable
from services.kit.settings import Settings
from tests.support.jwks import JwksServer
from tests.support.ports import free_port
from tests.support.tokens import ISSUER, SigningKey


def jwks_verifier(url: str) -> TokenVerifier:
    return TokenVerifier(
        Settings(_env_file=None, clerk_issuer=ISSUER, clerk_jwks_url=url, app_env="test")
    )


def test_a_new_key_verifies_after_the_jwks_rotates() -> None:
    old, new, later = SigningKey(), SigningKey(), SigningKey()
    with JwksServer().running() as jwks:
        jwks.keys = [old]
        verifier = jwks_verifier(jwks.url)
        assert verifier.verify(old.mint("u1")).user_id == "u1"
        assert verifier.verify(old.mint("u2")).user_id == "u2"
        assert jwks.fetches == 1  # cached

        jwks.keys = [old, new]  # Clerk rotates: the new kid appears
        assert verifier.verify(new.mint("u3")).user_id == "u3"
        assert jwks.fetches == 2  # refetched once for the unknown kid
        assert verifier.verify(old.mint("u4")).user_id == "u4"

        # Unknown kids do not make us hammer the JWKS endpoint.
        for _ in range(5):
            with pytest.raises(Unauthenticated):
                verifier.verify(SigningKey().mint("x"))
        assert jwks.fetches == 2
        jwks.keys = [new, later]
        with pytest.raises(Unauthenticated):  # within the refetch interval: not fetched yet
            verifier.verify(later.mint("u5"))


def test_unreachable_jwks_is_unavailable_not_unauthorized() -> None:
    verifier = jwks_verifier(f"http://127.0.0.1:{free_port()}/jwks.json")
    with pytest.raises(Unavailable):
        verifier.verify(SigningKey().mint("u"))
