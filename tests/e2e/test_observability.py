"""One request id from the edge through every service it touches, in JSON logs."""

from __future__ import annotations

import json
import time
import uuid

import httpx

from tests.support.stack import Stack
from tests.support.tokens import DEFAULT_KEY, new_user_id


def _json_lines(stack: Stack, process: str) -> list[dict[str, object]]:
    lines = []
    for raw in (stack.root / f"{process}.log").read_text(errors="replace").splitlines():
        try:
            lines.append(json.loads(raw))
        except json.JSONDecodeError:
            continue
    return lines


def test_request_id_reaches_every_service(stack: Stack, http: httpx.Client) -> None:
    """A refused creation (402) is logged by the gateway, the task service and the credit service
    (services log failures at INFO), all under the id the client sent."""
    headers = {"authorization": f"Bearer {DEFAULT_KEY.mint(new_user_id())}"}
    http.post("/api/users/initialize", json={"email": "o@example.com"}, headers=headers)
    for _ in range(2):  # spend the 10 credits
        http.post("/api/tasks/create", json={"type": "video_generation"}, headers=headers)
    request_id = f"trace-{uuid.uuid4().hex}"
    response = http.post(
        "/api/tasks/create",
        json={"type": "video_generation"},
        headers={**headers, "x-request-id": request_id},
    )
    assert response.status_code == 402
    assert response.headers["x-request-id"] == request_id
    time.sleep(2.0)  # Envoy flushes its access log every second
    lines = {
        process: _mine(stack, process, request_id) for process in ("gateway", "task", "credit")
    }
    assert lines["gateway"], stack.logs_tail(3)
    assert any(str(line.get("method")).endswith("CreateTask") for line in lines["task"])
    assert any(str(line.get("method")).endswith("Charge") for line in lines["credit"])
    assert all(line["level"] == "info" for line in [*lines["task"], *lines["credit"]])


def _mine(stack: Stack, process: str, request_id: str) -> list[dict[str, object]]:
    return [line for line in _json_lines(stack, process) if line.get("request_id") == request_id]
