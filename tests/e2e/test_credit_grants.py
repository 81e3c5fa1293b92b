"""Grants, the admin API, the price catalog and the quote through the real Envoy."""

from __future__ import annotations

from typing import Any

import httpx

from tests.e2e.test_billing import auth, credits, signup_user
from tests.e2e.test_gateway import assert_error
from tests.support.tokens import DEFAULT_KEY, new_user_id


def _admin() -> dict[str, str]:
    token = DEFAULT_KEY.mint(new_user_id(), metadata={"role": "admin"})
    return {"authorization": f"Bearer {token}"}


def test_support_grants_and_voids_and_the_user_sees_the_grant(http: httpx.Client) -> None:
    user, headers = signup_user(http)
    staff = _admin()
    body: dict[str, Any] = {
        "userId": user,
        "amount": 20,
        "category": "promotional",
        "reason": "Launch week",
        "expiresIn": "30d",
    }

    refused = http.post("/api/admin/credits/grants", json=body, headers=headers)
    assert assert_error(refused, 403)["error"] == "This endpoint is for administrators only"
    assert_error(http.post("/api/admin/credits/grants", json=body), 401)

    first = http.post(
        "/api/admin/credits/grants", json=body, headers={**staff, "idempotency-key": "launch-1"}
    )
    assert first.status_code == 201, first.text
    again = http.post(
        "/api/admin/credits/grants", json=body, headers={**staff, "idempotency-key": "launch-1"}
    )
    assert (again.status_code, again.json()["applied"]) == (200, False)
    grant = first.json()["grant"]
    assert (grant["category"], grant["remaining"], grant["priority"]) == ("promotional", 20, 10)

    mine = credits(http, headers)
    assert (mine["currentCredits"], mine["bonusCredits"]) == (30, 20)
    assert [(g["category"], g["remaining"]) for g in mine["grants"]] == [
        ("promotional", 20),
        ("allowance", 10),
    ]
    assert all("expiresAt" in g for g in mine["grants"])
    spent = http.post(
        "/api/tasks/create", json={"type": "video_generation", "inputData": {}}, headers=headers
    )
    assert spent.status_code == 201, spent.text
    transactions = http.get("/api/users/transactions", headers=headers).json()["transactions"]
    assert transactions[0]["grants"] == [
        {"grantId": grant["id"], "category": "promotional", "amount": -5}
    ]

    void = http.post(
        f"/api/admin/credits/grants/{grant['id']}/void",
        json={"reason": "Wrong account"},
        headers=staff,
    )
    assert void.status_code == 200, void.text
    assert void.json()["entry"]["amount"] == -15
    missing = http.post(
        "/api/admin/credits/grants/999999999/void", json={"reason": "x"}, headers=staff
    )
    assert assert_error(missing, 404)["error"] == "Grant not found"
    shown = http.get(f"/api/admin/credits/users/{user}", headers=staff).json()
    assert [e["reason"] for e in shown["entries"] if e["actor"]] == ["Wrong account", "Launch week"]
    assert credits(http, headers)["currentCredits"] == 10
    assert_error(http.get(f"/api/admin/credits/users/{user}", headers=headers), 403)


def test_prices_and_quotes(http: httpx.Client) -> None:
    prices = http.get("/api/billing/prices")
    assert prices.status_code == 200, prices.text
    assert {p["type"]: p["cost"] for p in prices.json()["prices"]} == {
        "image_analysis": 1,
        "video_generation": 5,
        "advanced_editing": 3,
    }
    user, headers = signup_user(http)
    quote = http.get("/api/tasks/quote", params={"type": "advanced_editing"}, headers=headers)
    assert quote.status_code == 200, quote.text
    assert (quote.json()["allowed"], quote.json()["reason"], quote.json()["cost"]) == (
        False,
        "feature_not_in_plan",
        3,
    )
    ok = http.get("/api/tasks/quote", params={"type": "video_generation"}, headers=headers)
    assert (ok.json()["allowed"], ok.json()["availableCredits"]) == (True, 10)
    assert http.get("/api/tasks/quote", params={"type": "x"}, headers=headers).status_code == 400
    assert credits(http, auth(user))["currentCredits"] == 10
