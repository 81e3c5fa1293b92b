"""docs/openapi.json against what the gateway really answers: the gateway serves the committed
document, and a walk through every operation (successes and the errors each route declares) gets
only answers the document allows, body by body. Also the JSON shape decisions: seed vocabulary for
transactions, the profile with plan and credits, lowercase health, unknown fields ignored."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devstack.stripe_emulator import StripeEmulator, body_of, sign
from tests.support.cluster import INTERNAL_TOKEN
from tests.support.contract import DOCUMENT, Contract
from tests.support.stack import Stack
from tests.support.tokens import DEFAULT_KEY, new_user_id


@pytest.fixture(scope="module")
def contract() -> Contract:
    return Contract()


@pytest.fixture
def api(stack: Stack, contract: Contract) -> Iterator[httpx.Client]:
    """A client whose every answer is checked against the document."""

    def check(response: httpx.Response) -> None:
        response.read()
        contract.check(response)

    with httpx.Client(
        base_url=stack.base_url, timeout=15, event_hooks={"response": [check]}
    ) as client:
        yield client


def bearer(user_id: str) -> dict[str, str]:
    return {"authorization": f"Bearer {DEFAULT_KEY.mint(user_id, email=f'{user_id}@example.com')}"}


def test_the_gateway_serves_the_committed_document(http: httpx.Client) -> None:
    served = http.get("/api/openapi.json")
    assert served.status_code == 200
    assert served.headers["content-type"] == "application/json"
    assert served.content == DOCUMENT.read_bytes()
    # Still the API's own errors elsewhere: another method on it is an unknown route.
    assert http.post("/api/openapi.json").json() == {"error": "Not found", "statusCode": 404}


def test_every_operation_answers_as_documented(
    api: httpx.Client, contract: Contract, stripe: StripeEmulator
) -> None:
    user_id = new_user_id()
    user = bearer(user_id)
    internal = {"x-internal-token": INTERNAL_TOKEN}

    assert api.get("/health").json()["services"]["credit"] == "serving"
    assert api.get("/api/billing/plans").status_code == 200
    assert api.get("/api/users/me").status_code == 401
    assert api.get("/api/users/credits", headers=user).status_code == 404  # not initialized yet

    first = api.post(
        "/api/users/initialize", json={"email": f"{user_id}@example.com"}, headers=user
    )
    assert first.status_code == 201
    again = api.post("/api/users/initialize", json={"email": "y@example.com"}, headers=user)
    assert again.status_code == 200
    assert api.post("/api/users/initialize", content=b"{", headers=user).status_code == 400
    assert api.get("/api/users/me", headers=user).json()["user"]["currentCredits"] == 10
    assert api.get("/api/users/credits", headers=user).status_code == 200
    assert api.get("/api/billing/next-date", headers=user).status_code == 200

    created = api.post(
        "/api/tasks/create",
        json={"type": "video_generation", "inputData": {"prompt": "dusk", "n": [1, {"a": None}]}},
        headers={**user, "idempotency-key": "openapi-1"},
    )
    assert created.status_code == 201
    task_id = created.json()["task"]["id"]
    assert api.post("/api/tasks/create", json={"type": "hologram"}, headers=user).status_code == 400
    feature = api.post("/api/tasks/create", json={"type": "advanced_editing"}, headers=user)
    assert feature.status_code == 403
    too_big = {"type": "image_analysis", "inputData": {"blob": "a" * 70_000}}
    assert api.post("/api/tasks/create", json=too_big, headers=user).status_code == 413
    api.post("/api/tasks/create", json={"type": "video_generation"}, headers=user)
    short = api.post("/api/tasks/create", json={"type": "video_generation"}, headers=user)
    assert short.status_code == 402

    assert api.get("/api/tasks", params={"status": "pending", "limit": 1}, headers=user).json()[
        "nextCursor"
    ]
    assert api.get("/api/tasks", params={"limit": 101}, headers=user).status_code == 400
    assert api.get("/api/tasks/stats", headers=user).status_code == 200
    assert api.get(f"/api/tasks/{task_id}", headers=user).status_code == 200
    assert api.get("/api/tasks/not-a-task", headers=user).status_code == 404

    # A worker moves the first task to done: outputData and completedAt appear.
    status = f"/api/tasks/{task_id}/status"
    assert api.patch(status, json={"status": "done"}, headers=user).status_code == 403
    assert api.patch(status, json={"status": "processing"}, headers=internal).status_code == 200
    done = api.patch(status, json={"status": "done", "outputData": {"url": "u"}}, headers=internal)
    assert done.json()["task"]["completedAt"]
    assert api.patch(status, json={"status": "pending"}, headers=internal).status_code == 409
    assert api.patch(f"/api/tasks/{task_id}/cancel", headers=user).status_code == 409
    second = api.get("/api/tasks", params={"status": "pending"}, headers=user).json()["tasks"][0]
    cancelled = api.patch(f"/api/tasks/{second['id']}/cancel", headers=user)
    assert cancelled.json()["refundApplied"] is True

    purchase = api.post(
        "/api/billing/purchase-credits", json={"packId": "credits_10"}, headers=user
    )
    assert purchase.status_code == 200
    for event in stripe.complete_checkout(purchase.json()["sessionId"]):
        payload = body_of(event)
        signature = sign(payload, stripe.webhook_secret)
        delivered = api.post(
            "/api/billing/webhook",
            content=payload,
            headers={"content-type": "application/json", "stripe-signature": signature},
        )
        assert delivered.status_code == 200
    unsigned = api.post("/api/billing/webhook", content=b"{}", headers={"stripe-signature": "x"})
    assert unsigned.status_code == 400
    assert (
        api.post("/api/billing/upgrade-plan", json={"planName": "free"}, headers=user).status_code
        == 409
    )
    for path in ("/api/billing/upgrade-plan", "/api/users/upgrade-plan"):
        assert api.post(path, json={"planName": "pro"}, headers=user).status_code == 200
    assert (
        api.post("/api/billing/upgrade-plan", json={"planName": "gold"}, headers=user).status_code
        == 400
    )
    assert api.get("/api/billing/history", headers=user).json()["count"] >= 1

    # The ledger in the seed's words: newest first.
    transactions = api.get("/api/users/transactions", headers=user).json()["transactions"]
    assert [t["type"] for t in transactions] == [
        "credit_purchase",
        "refund",
        "credit_use",
        "credit_use",
        "credit_add",
    ]
    assert transactions[1]["reference"] == second["id"]

    # Prices, quotes, and support's admin API (a session with the admin role).
    assert api.get("/api/billing/prices").status_code == 200
    quote = api.get("/api/tasks/quote", params={"type": "image_analysis"}, headers=user)
    assert quote.status_code == 200
    assert api.get("/api/tasks/quote", params={"type": "x"}, headers=user).status_code == 400
    staff = {
        "authorization": f"Bearer {DEFAULT_KEY.mint(new_user_id(), metadata={'role': 'admin'})}"
    }
    promo = {"userId": user_id, "amount": 5, "reason": "openapi walk", "expiresIn": "7d"}
    assert api.post("/api/admin/credits/grants", json=promo, headers=user).status_code == 403
    granted = api.post("/api/admin/credits/grants", json=promo, headers=staff)
    assert granted.status_code == 201
    grant_id = granted.json()["grant"]["id"]
    void = f"/api/admin/credits/grants/{grant_id}/void"
    assert api.post(void, json={"reason": "walk"}, headers=staff).status_code == 200
    assert api.get(f"/api/admin/credits/users/{user_id}", headers=staff).status_code == 200
    assert api.get("/api/admin/credits/users/nobody", headers=staff).status_code == 404
    # Auto top-up and alerts (issue 16): off, so no card is needed.
    top_up = {"enabled": False, "threshold": 20, "packId": "credits_50"}
    assert api.put("/api/billing/auto-top-up", json=top_up, headers=user).status_code == 200
    assert api.get("/api/billing/auto-top-up", headers=user).status_code == 200
    assert api.get("/api/users/alerts", headers=user).status_code == 200
    threshold = api.put("/api/users/alerts/threshold", json={"threshold": 3}, headers=user)
    assert threshold.status_code == 200

    answered = {operation for operation, status in contract.seen if status < 300}
    assert answered == contract.operation_ids(), "operations never answered with a success"


def test_the_profile_carries_plan_and_credits_like_the_seed(api: httpx.Client) -> None:
    user = bearer(new_user_id())
    me = api.get("/api/users/me", headers=user).json()["user"]  # initializes from the claims
    assert me["plan"] == {"id": "free", "name": "Free", "monthlyCredits": 10, "isUnlimited": False}
    assert (me["planName"], me["currentCredits"]) == ("free", 10)
    assert me["creditResetAt"].endswith("Z")


def test_unknown_body_fields_and_query_parameters_are_ignored(api: httpx.Client) -> None:
    user = bearer(new_user_id())
    created = api.post(
        "/api/users/initialize", json={"email": "u@example.com", "nickname": "zz"}, headers=user
    )
    assert created.status_code == 201
    listed = api.get("/api/tasks", params={"sort": "newest", "limit": 5}, headers=user)
    assert listed.status_code == 200
    assert api.get("/api/billing/plans", params={"bogus": "1"}).status_code == 200


def test_no_protobuf_enum_names_on_the_wire(contract: Contract) -> None:
    """Every enumerated value in the document is a lowercase word, never FOO_BAR."""

    def values(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "enum":
                    yield from value
                else:
                    yield from values(value)
        elif isinstance(node, list):
            for item in node:
                yield from values(item)

    found = list(values(contract.document))
    assert found
    assert all(v == v.lower() and "UNSPECIFIED" not in v for v in found), found
    assert "ENTRY_KIND" not in json.dumps(contract.document)


@pytest.mark.parametrize(
    "header",
    [("a&b", "1"), ("x~y", "1"), ("x-data-bin", "!!not base64"), ("grpc-timeout", "soon")],
)
def test_headers_grpc_cannot_carry_are_dropped_not_a_500(
    api: httpx.Client, header: tuple[str, str]
) -> None:
    """Legal HTTP, refused by gRPC metadata: forwarded, they failed the call with a 500."""
    user = bearer(new_user_id())
    assert api.get("/api/billing/plans", headers=dict([header])).status_code == 200
    reply = api.post(
        "/api/users/initialize",
        json={"email": "h@example.com"},
        headers={**user, header[0]: header[1]},
    )
    assert reply.status_code == 201
