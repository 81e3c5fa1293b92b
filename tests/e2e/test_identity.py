"""Identity through the real Envoy: every forged or broken token is a JSON 401, a valid one works,
and the local stack's dev tokens sign in."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from tests.e2e.test_gateway import assert_error
from tests.support.forge import attack_tokens
from tests.support.stack import Stack
from tests.support.tokens import DEFAULT_KEY, new_user_id

ATTACKS = attack_tokens(DEFAULT_KEY)


def auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@pytest.mark.parametrize("name", list(ATTACKS))
@pytest.mark.parametrize("path", ["/api/users/me", "/api/users/credits"])
def test_attacks_are_json_401(http: httpx.Client, name: str, path: str) -> None:
    header = ATTACKS[name]
    headers = {} if header is None else {"authorization": header}
    body = assert_error(http.get(path, headers=headers), 401)
    assert body["error"] == "Unauthorized"


def test_initialize_then_me_and_credits(http: httpx.Client) -> None:
    user = new_user_id()
    headers = auth(DEFAULT_KEY.mint(user))
    created = http.post("/api/users/initialize", json={"email": "e2e@example.com"}, headers=headers)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["success"] is True
    assert body["user"]["id"] == user
    assert body["user"]["planName"] == "free"
    assert body["created"] is True

    again = http.post("/api/users/initialize", json={"email": "e2e@example.com"}, headers=headers)
    assert again.status_code == 200
    assert again.json()["created"] is False

    me = http.get("/api/users/me", headers=headers)
    assert me.status_code == 200
    profile = me.json()["user"]
    assert profile["email"] == "e2e@example.com"
    # The profile with its plan and current credits, as the seed answered.
    assert profile["plan"] == {
        "id": "free",
        "name": "Free",
        "monthlyCredits": 10,
        "isUnlimited": False,
    }
    assert profile["currentCredits"] == 10
    assert profile["creditResetAt"].endswith("Z")

    credits = http.get("/api/users/credits", headers=headers).json()["credits"]
    assert credits["userId"] == user
    assert credits["currentCredits"] == 10
    assert credits["allowanceCredits"] == 10
    assert credits["purchasedCredits"] == 0
    assert credits["monthlyAllowance"] == 10
    assert credits["planName"] == "free"
    assert credits["isUnlimited"] is False
    assert credits["creditsUsedThisMonth"] == 0
    assert credits["creditResetAt"].endswith("Z")

    txs = http.get("/api/users/transactions", params={"limit": 5}, headers=headers).json()
    assert txs["success"] is True
    assert txs["count"] == 1
    assert txs["transactions"][0]["type"] == "credit_add"
    assert txs["transactions"][0]["amount"] == 10
    assert txs["nextCursor"] == ""

    nxt = http.get("/api/billing/next-date", headers=headers).json()
    assert nxt["success"] is True
    assert 28 <= nxt["daysUntilReset"] <= 31


@pytest.mark.parametrize(
    "body",
    [{"email": "nope"}, {}, {"email": "ok@example.com", "name": "n" * 101}, {"email": 12}],
)
def test_bad_initialize_input_is_json_400(http: httpx.Client, body: dict[str, object]) -> None:
    headers = auth(DEFAULT_KEY.mint(new_user_id()))
    assert_error(http.post("/api/users/initialize", json=body, headers=headers), 400)


def test_malformed_json_is_json_400(http: httpx.Client) -> None:
    headers = {**auth(DEFAULT_KEY.mint(new_user_id())), "content-type": "application/json"}
    assert_error(http.post("/api/users/initialize", content=b"{not json", headers=headers), 400)


@pytest.mark.parametrize(
    "params", [{"limit": "0x"}, {"limit": "-1"}, {"limit": "500"}, {"cursor": "??"}]
)
def test_bad_transactions_query_is_json_400(http: httpx.Client, params: dict[str, str]) -> None:
    user = new_user_id()
    headers = auth(DEFAULT_KEY.mint(user))
    http.post("/api/users/initialize", json={"email": "q@example.com"}, headers=headers)
    assert_error(http.get("/api/users/transactions", params=params, headers=headers), 400)


def test_dev_token_from_the_cli_signs_in(stack: Stack, http: httpx.Client) -> None:
    user = new_user_id()
    token = subprocess.run(
        [
            sys.executable,
            "-m",
            "studiox_cli",
            "token",
            "--user",
            user,
            "--email",
            "dev@example.com",
        ],
        env=stack.env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    me = http.get("/api/users/me", headers=auth(token))
    assert me.status_code == 200, me.text
    profile = me.json()["user"]
    assert (profile["id"], profile["email"], profile["planName"]) == (
        user,
        "dev@example.com",
        "free",
    )
