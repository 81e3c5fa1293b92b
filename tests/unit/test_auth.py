"""Token verification with a PEM key (no network)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from devstack import dev_tokens
from services.kit.auth import TokenVerifier, bearer_token
from services.kit.errors import Unauthenticated
from services.kit.settings import Settings
from tests.support.forge import attack_tokens
from tests.support.tokens import AUTHORIZED_PARTY, DEFAULT_KEY, ISSUER


def verifier(**overrides: Any) -> TokenVerifier:
    values: dict[str, Any] = {
        "clerk_issuer": ISSUER,
        "clerk_jwt_key": DEFAULT_KEY.public_pem,
        "clerk_authorized_parties": [AUTHORIZED_PARTY],
        "app_env": "test",
        **overrides,
    }
    return TokenVerifier(Settings(_env_file=None, **values))


def test_a_valid_token_names_its_subject() -> None:
    token = DEFAULT_KEY.mint("user_123", email="a@example.com", name="Ada")
    identity = verifier().verify(token)
    assert (identity.user_id, identity.email, identity.name) == ("user_123", "a@example.com", "Ada")


def test_small_clock_skew_is_tolerated() -> None:
    assert verifier().verify(DEFAULT_KEY.mint("u", lifetime=-5)).user_id == "u"


@pytest.mark.parametrize("name", list(attack_tokens(DEFAULT_KEY)))
def test_every_attack_is_a_bare_401(name: str) -> None:
    header = attack_tokens(DEFAULT_KEY)[name]
    metadata = {} if header is None else {"authorization": header}
    with pytest.raises(Unauthenticated) as err:
        verifier().verify(bearer_token(metadata))
    assert err.value.message == "Unauthorized"
    assert err.value.metadata == {}


def test_azp_is_not_checked_when_no_parties_are_configured() -> None:
    token = DEFAULT_KEY.mint("u", azp="https://anything.example")
    assert verifier(clerk_authorized_parties=[]).verify(token).user_id == "u"


def test_dev_tokens_are_trusted_in_development_only(tmp_path: Path) -> None:
    public = dev_tokens.ensure_keypair(tmp_path)
    token = dev_tokens.mint(tmp_path, "user_dev", email="dev@example.com")
    dev = verifier(app_env="development", dev_jwt_public_key_file=str(public))
    assert dev.verify(token).user_id == "user_dev"
    for env in ("production", "test"):
        with pytest.raises(Unauthenticated):
            verifier(app_env=env, dev_jwt_public_key_file=str(public)).verify(token)


def test_dev_key_pair_is_made_once(tmp_path: Path) -> None:
    first = dev_tokens.ensure_keypair(tmp_path).read_bytes()
    assert dev_tokens.ensure_keypair(tmp_path).read_bytes() == first


def test_without_clerk_configuration_nothing_but_dev_tokens_pass() -> None:
    with pytest.raises(Unauthenticated):
        verifier(clerk_issuer=None, clerk_jwt_key=None).verify(DEFAULT_KEY.mint("u"))


def test_verified_tokens_expire_and_stay_bounded() -> None:
    import time

    from services.kit.auth import VerifiedTokens
    from services.kit.context import Identity

    cache = VerifiedTokens(capacity=2)
    now = int(time.time())
    fresh = Identity("u1", claims={"exp": now + 60})
    cache.put("t1", fresh)
    assert cache.get("t1") == fresh
    cache.put("t-old", Identity("u2", claims={"exp": now - 1}))
    assert cache.get("t-old") is None  # never trusted past exp
    cache.put("t2", Identity("u3", claims={"exp": now + 60}))
    cache.put("t3", Identity("u4", claims={"exp": now + 60}))
    assert cache.get("t1") is None  # least recently used went first
    assert cache.get("t3") is not None
    cache.put("t4", Identity("u5", claims={}))  # no exp: not cached
    assert cache.get("t4") is None
