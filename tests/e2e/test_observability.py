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
    headers = {"authorization": f"Bearer {DEFAULT_KEY.mint(new_user_id())}"}
    http.post("/api/users/initialize", json={"email": "o@example.com"}, headers=headers)
    request_id = f"trace-{uuid.uuid4().hex}"
    response = http.post(
        "/api/tasks/create",
        json={"type": "image_analysis"},
        headers={**headers, "x-request-id": request_id},
    )
    assert response.status_code == 201
    time.sleep(2.0)  # Envoy flushes its access log every second
    for process in ("gateway", "task", "credit"):
        matches = [
            line for line in _json_lines(stack, process) if line.get("request_id") == request_id
        ]
        assert matches, f"{process} logged nothing for {request_id}: {stack.logs_tail(3)}"
    task_lines = [
        line for line in _json_lines(stack, "task") if line.get("request_id") == request_id
    ]
    assert any(str(line.get("method")).endswith("CreateTask") for line in task_lines)
    credit_lines = [
        line for line in _json_lines(stack, "credit") if line.get("request_id") == request_id
    ]
    assert any(str(line.get("method")).endswith("Charge") for line in credit_lines)
