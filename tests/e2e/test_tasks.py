"""Tasks through the real Envoy: shapes, statuses and the error contract."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc
import httpx
import pytest

from studiox.credit.v1 import credit_pb2, credit_pb2_grpc
from tests.e2e.test_gateway import assert_error
from tests.support.cluster import INTERNAL_TOKEN
from tests.support.stack import Stack
from tests.support.tokens import DEFAULT_KEY, new_user_id


def signed_up(http: httpx.Client) -> dict[str, str]:
    headers = {"authorization": f"Bearer {DEFAULT_KEY.mint(new_user_id())}"}
    assert (
        http.post(
            "/api/users/initialize", json={"email": "t@example.com"}, headers=headers
        ).status_code
        == 201
    )
    return headers


def test_create_get_cancel_and_stats(http: httpx.Client) -> None:
    user = signed_up(http)
    created = http.post(
        "/api/tasks/create",
        json={"type": "video_generation", "inputData": {"prompt": "sunset"}},
        headers=user,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["success"], body["creditDeducted"], body["remainingCredits"]) == (True, 5, 5)
    assert body["message"]
    task = body["task"]
    assert (task["type"], task["status"], task["inputData"]) == (
        "video_generation",
        "pending",
        {"prompt": "sunset"},
    )

    got = http.get(f"/api/tasks/{task['id']}", headers=user).json()
    assert got == {"success": True, "task": got["task"]}
    assert got["task"]["id"] == task["id"]

    stats = http.get("/api/tasks/stats", headers=user)
    assert stats.status_code == 200
    assert stats.json()["stats"]["total"] == 1
    assert stats.json()["stats"]["byType"] == {"video_generation": 1}

    listed = http.get("/api/tasks", params={"status": "pending", "limit": 10}, headers=user).json()
    assert (listed["success"], listed["count"]) == (True, 1)

    cancelled = http.patch(f"/api/tasks/{task['id']}/cancel", headers=user).json()
    assert (cancelled["task"]["status"], cancelled["refundApplied"]) == ("cancelled", True)
    again = http.patch(f"/api/tasks/{task['id']}/cancel", headers=user).json()
    assert again["refundApplied"] is False
    assert http.get("/api/users/credits", headers=user).json()["credits"]["currentCredits"] == 10


def test_error_contract_for_tasks(http: httpx.Client) -> None:
    user = signed_up(http)
    body = assert_error(
        http.post("/api/tasks/create", json={"type": "hologram"}, headers=user), 400
    )
    assert "image_analysis, video_generation, advanced_editing" in str(body["error"])
    assert_error(
        http.post("/api/tasks/create", json={"type": "advanced_editing"}, headers=user), 403
    )
    for _ in range(2):
        http.post("/api/tasks/create", json={"type": "video_generation"}, headers=user)
    body = assert_error(
        http.post("/api/tasks/create", json={"type": "video_generation"}, headers=user), 402
    )
    assert body["error"] == "Insufficient credits. Required: 5, Available: 0"
    assert_error(
        http.post(
            "/api/tasks/create", json={"type": "image_analysis", "inputData": "text"}, headers=user
        ),
        400,
    )
    big = {"type": "image_analysis", "inputData": {"blob": "x" * 70_000}}
    assert_error(http.post("/api/tasks/create", json=big, headers=user), 413)
    assert_error(http.get("/api/tasks", params={"status": "nope"}, headers=user), 400)
    assert_error(http.get("/api/tasks/not-a-uuid", headers=user), 404)


def test_other_users_task_is_404(http: httpx.Client) -> None:
    owner, stranger = signed_up(http), signed_up(http)
    task = http.post("/api/tasks/create", json={"type": "image_analysis"}, headers=owner).json()[
        "task"
    ]
    assert_error(http.get(f"/api/tasks/{task['id']}", headers=stranger), 404)
    assert_error(http.patch(f"/api/tasks/{task['id']}/cancel", headers=stranger), 404)


def test_status_endpoint_needs_the_worker_credential(http: httpx.Client) -> None:
    user = signed_up(http)
    task = http.post("/api/tasks/create", json={"type": "image_analysis"}, headers=user).json()[
        "task"
    ]
    path = f"/api/tasks/{task['id']}/status"
    assert_error(http.patch(path, json={"status": "processing"}, headers=user), 403)
    assert_error(http.patch(path, json={"status": "processing"}), 401)
    worker = {"x-internal-token": INTERNAL_TOKEN}
    assert (
        http.patch(path, json={"status": "processing"}, headers=worker).json()["task"]["status"]
        == "processing"
    )
    assert_error(http.patch(path, json={"status": "pending"}, headers=worker), 409)
    done = http.patch(
        path, json={"status": "done", "outputData": {"labels": ["cat"]}}, headers=worker
    ).json()
    assert done["task"]["outputData"] == {"labels": ["cat"]}
    assert_error(http.patch(f"/api/tasks/{task['id']}/cancel", headers=user), 409)


def test_idempotency_key_header(http: httpx.Client) -> None:
    user = signed_up(http)
    headers = {**user, "idempotency-key": "create-once"}
    first = http.post(
        "/api/tasks/create", json={"type": "video_generation"}, headers=headers
    ).json()
    second = http.post(
        "/api/tasks/create", json={"type": "video_generation"}, headers=headers
    ).json()
    assert first["task"]["id"] == second["task"]["id"]
    assert http.get("/api/users/credits", headers=user).json()["credits"]["currentCredits"] == 5


def grant_purchased(stack: Stack, user_id: str, amount: int) -> None:
    with grpc.insecure_channel(stack.settings.credit_service_addr) as channel:
        credit_pb2_grpc.CreditInternalServiceStub(channel).Grant(
            credit_pb2.GrantRequest(
                user_id=user_id,
                amount=amount,
                bucket=credit_pb2.BUCKET_PURCHASED,
                idempotency_key=f"test-grant:{amount}",
            ),
            metadata=(("x-internal-token", INTERNAL_TOKEN),),
            timeout=10,
        )


def test_100_concurrent_creates_through_the_gateway(stack: Stack) -> None:
    user_id = new_user_id()
    user = {"authorization": f"Bearer {DEFAULT_KEY.mint(user_id)}"}
    with stack.client() as http:
        http.post("/api/users/initialize", json={"email": "burst@example.com"}, headers=user)
    grant_purchased(stack, user_id, 27)  # 10 + 27 = 37

    def create(_: int) -> int:
        return http.post(
            "/api/tasks/create", json={"type": "video_generation"}, headers=user
        ).status_code

    with ThreadPoolExecutor(max_workers=32) as pool, stack.client() as http:
        statuses = list(pool.map(create, range(100)))
    assert statuses.count(201) == 7
    assert statuses.count(402) == 93
    with stack.client() as http:
        credits = http.get("/api/users/credits", headers=user).json()["credits"]
        assert credits["currentCredits"] == 2
        assert http.get("/api/tasks/stats", headers=user).json()["stats"]["total"] == 7


@pytest.mark.parametrize("path", ["/api/tasks", "/api/tasks/stats", "/api/tasks/create"])
def test_task_routes_need_a_token(http: httpx.Client, path: str) -> None:
    method = "POST" if path.endswith("create") else "GET"
    assert_error(http.request(method, path, json={} if method == "POST" else None), 401)
