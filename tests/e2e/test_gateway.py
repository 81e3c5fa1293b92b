"""The foundation through the real Envoy: health, the plans slice, and the JSON error contract for
Envoy's own replies and for services."""

from __future__ import annotations

import httpx
import pytest

from services.kit.settings import SERVICE_NAMES
from tests.support.stack import Stack


def assert_error(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, object] = response.json()
    assert set(body) == {"error", "statusCode"}
    assert body["statusCode"] == status
    assert isinstance(body["error"], str)
    assert body["error"]
    return body


def test_health_is_ok_when_every_service_serves(http: httpx.Client) -> None:
    response = http.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["timestamp"].endswith("Z")
    assert body["services"] == dict.fromkeys(SERVICE_NAMES, "SERVING")
    assert not any(h.startswith("grpc-") for h in response.headers)


def test_plans_end_to_end(http: httpx.Client) -> None:
    response = http.get("/api/billing/plans")
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    plans = {p["id"]: p for p in body["plans"]}
    assert list(plans) == ["free", "pro", "enterprise"]
    assert plans["free"] == {
        "id": "free",
        "name": "Free",
        "price": 0,
        "currency": "usd",
        "interval": "month",
        "monthlyCredits": 10,
        "isUnlimited": False,
        "features": ["image_analysis", "video_generation"],
    }
    assert plans["pro"]["monthlyCredits"] == 100
    assert plans["pro"]["features"] == ["image_analysis", "video_generation", "advanced_editing"]
    assert plans["enterprise"]["isUnlimited"] is True


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/nope"),
        ("GET", "/nothing/here"),
        ("POST", "/api/users/unknown"),
        ("DELETE", "/api/tasks/x"),
    ],
)
def test_unknown_route_is_json_404(http: httpx.Client, method: str, path: str) -> None:
    assert_error(http.request(method, path), 404)


def test_oversized_body_is_json_413(http: httpx.Client) -> None:
    big = b'{"type": "image_analysis", "inputData": {"blob": "' + b"a" * 2_000_000 + b'"}}'
    response = http.post(
        "/api/tasks/create", content=big, headers={"content-type": "application/json"}
    )
    assert_error(response, 413)


def test_unknown_query_parameter_is_json_400(http: httpx.Client) -> None:
    assert_error(http.get("/api/billing/plans", params={"bogus": "1"}), 400)


def test_internal_services_are_not_routed(stack: Stack, http: httpx.Client) -> None:
    """A gRPC call straight to an internal service through the gateway never reaches it."""
    for path in (
        "/studiox.credit.v1.CreditInternalService/Grant",
        "/studiox.billing.v1.BillingInternalService/GetPlan",
    ):
        response = http.post(
            path, content=b"\x00\x00\x00\x00\x00", headers={"content-type": "application/grpc"}
        )
        assert response.headers.get("grpc-status") == "12" or response.status_code == 404
        assert b"Pro" not in response.content
    assert_error(http.post("/studiox.billing.v1.BillingInternalService/GetPlan", json={}), 404)


def test_cors_preflight_allows_the_frontend(http: httpx.Client) -> None:
    response = http.options(
        "/api/billing/plans",
        headers={
            "origin": "http://localhost:5173",
            "access-control-request-method": "GET",
            "access-control-request-headers": "authorization",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "http://localhost:5173"
    other = http.options(
        "/api/billing/plans",
        headers={"origin": "https://evil.example", "access-control-request-method": "GET"},
    )
    assert "access-control-allow-origin" not in other.headers


def test_a_stopped_service_makes_health_503_and_its_routes_json_503(
    stack: Stack, http: httpx.Client
) -> None:
    stack.stop_process("billing")
    try:
        health = http.get("/health")
        assert health.status_code == 503
        assert health.json()["services"]["billing"] == "UNREACHABLE"
        assert health.json()["status"] == "degraded"
        assert_error(http.get("/api/billing/plans"), 503)
    finally:
        stack.start_process("billing")
        stack.wait_healthy(30)
    assert http.get("/api/billing/plans").status_code == 200
