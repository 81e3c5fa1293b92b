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
    assert body["services"] == dict.fromkeys(SERVICE_NAMES, "serving")
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
        assert health.json()["services"]["billing"] == "unreachable"
        assert health.json()["status"] == "degraded"
        assert_error(http.get("/api/billing/plans"), 503)
    finally:
        stack.start_process("billing")
        stack.wait_healthy(30)
    assert http.get("/api/billing/plans").status_code == 200


JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(
    ("method", "path", "body", "message"),
    [
        (
            "GET",
            "/api/tasks?limit=abc",
            None,
            "limit: must be a whole number between -2147483648 and 2147483647",
        ),
        (
            "GET",
            "/api/users/transactions?limit=99999999999",
            None,
            "limit: must be a whole number between -2147483648 and 2147483647",
        ),
        ("POST", "/api/tasks/create", b'{"type": 5}', "type: must be a string"),
        (
            "POST",
            "/api/tasks/create",
            b'{"type": {"a": 1}}',
            "type: must be a single value, not an object",
        ),
        (
            "POST",
            "/api/tasks/create",
            b'{"type": "x", "inputData": 5}',
            "inputData: must be a JSON object",
        ),
        ("POST", "/api/users/initialize", b'{"email": true}', "email: must be a string"),
        (
            "POST",
            "/api/billing/purchase-credits",
            b'{"credits": 1.5}',
            "credits: must be a whole number between -2147483648 and 2147483647",
        ),
        (
            "PATCH",
            "/api/tasks/abc/status",
            b'{"status": 5}',
            "status: must be a string",
        ),
        (
            "POST",
            "/api/tasks/create",
            b'{"type": ["x"]}',
            "Request body has a list where a single value is expected",
        ),
        ("POST", "/api/tasks/create", b"[1, 2]", "Request body must be a JSON object"),
        ("POST", "/api/tasks/create", b"null", "Request body must be a JSON object"),
        (
            "POST",
            "/api/tasks/create",
            b'{"type": "x"',
            "Request body is not valid JSON: Unexpected end of string. Expected , or } after key:value pair.",
        ),
        (
            "POST",
            "/api/tasks/create",
            b'{"type": "x"} trailing',
            "Request body is not valid JSON: Parsing terminated before end of input.",
        ),
        ("POST", "/api/tasks/create", b'{"type": "\xff\xfe"}', "Request body is not valid UTF-8"),
        ("POST", "/api/tasks/create", b"[" * 200 + b"]" * 200, "Request body is nested too deeply"),
    ],
)
def test_transcoder_errors_are_plain_json_400(
    http: httpx.Client, method: str, path: str, body: bytes | None, message: str
) -> None:
    """The transcoder's own wording names proto types (studiox.task.v1.ListTasksRequest,
    TYPE_STRING) and quotes the body around a syntax error; clients get which field and what was
    wrong instead."""
    response = http.request(method, path, content=body, headers=JSON if body else None)
    assert assert_error(response, 400)["error"] == message
    for leak in ("studiox.", "TYPE_", "googleapis", "proto", "\n"):
        assert leak not in response.text


def test_unknown_query_parameters_are_ignored_like_unknown_body_fields(
    http: httpx.Client,
) -> None:
    assert http.get("/api/billing/plans", params={"x" * 5000: "1", "foo": "2"}).status_code == 200
    assert http.get("/api/billing/plans", params={"status.x": "1"}).status_code == 200


def test_a_body_on_a_get_is_ignored(http: httpx.Client) -> None:
    response = http.request("GET", "/api/billing/plans", content=b'{"bogus": 1}', headers=JSON)
    assert response.status_code == 200


def test_large_headers_reach_services_and_oversized_ones_are_json_431(http: httpx.Client) -> None:
    """gRPC's default metadata limit (8-16 KB) used to answer RESOURCE_EXHAUSTED, shown as 429.
    Services now accept more than the gateway forwards; beyond the gateway's limit it is 431."""
    big = {"x-padding": "a" * 24_000}
    assert http.get("/api/billing/plans", headers=big).status_code == 200
    many = {f"x-padding-{i}": "a" * 300 for i in range(80)}
    assert http.get("/api/billing/plans", headers=many).status_code == 200
    body = assert_error(http.get("/api/billing/plans", headers={"x-padding": "a" * 40_000}), 431)
    assert body["error"] == "Request headers too large"
