"""One request, one trace: Envoy → task → credit → every SQL statement, exported over OTLP to a
receiver running in the test, with parent links intact and a refusal marked where it happened."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.support.database import drop_database, new_database
from tests.support.dirs import server_tempdir
from tests.support.otlp import OtlpReceiver, Span
from tests.support.stack import Stack
from tests.support.tokens import DEFAULT_KEY, new_user_id

GATEWAY = "studiox-gateway"
CREATE_TASK = "/studiox.task.v1.TaskService/CreateTask"
CHARGE = "/studiox.credit.v1.CreditInternalService/Charge"
LIST_TASKS = "/studiox.task.v1.TaskService/ListTasks"
GET_TASK = "/studiox.task.v1.TaskService/GetTask"
SERVER, CLIENT = 2, 3  # OTLP span kinds


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver().running() as running:
        yield running


@pytest.fixture(scope="module")
def traced(receiver: OtlpReceiver) -> Iterator[Stack]:
    """Its own stack: tracing is configured per process at start."""
    database_url = None
    if os.environ.get("DATABASE_URL"):
        database_url = new_database(os.environ["DATABASE_URL"])
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "100"}
    with server_tempdir("traced") as folder:
        stack = Stack(folder, database_url, extra_env=env)
        try:
            stack.start()
            yield stack
        finally:
            stack.close()
            if database_url:
                drop_database(database_url)


@pytest.fixture(scope="module")
def http(traced: Stack) -> Iterator[httpx.Client]:
    with traced.client() as client:
        yield client


def _user(http: httpx.Client) -> tuple[str, dict[str, str]]:
    user = new_user_id()
    headers = {"authorization": f"Bearer {DEFAULT_KEY.mint(user)}"}
    assert http.post("/api/users/initialize", json={"email": "t@example.com"}, headers=headers)
    return user, headers


def _edge_span(receiver: OtlpReceiver, request_id: str) -> Span:
    def found(spans: list[Span]) -> bool:
        return any(_is_edge(s, request_id) for s in spans)

    spans = receiver.wait_for(found)
    edge = [s for s in spans if _is_edge(s, request_id)]
    assert len(edge) == 1, f"no single gateway span for {request_id}: {len(spans)} spans in all"
    return edge[0]


def _is_edge(span: Span, request_id: str) -> bool:
    return span.service == GATEWAY and span.attributes.get("guid:x-request-id") == request_id


def _complete_trace(receiver: OtlpReceiver, trace_id: str) -> list[Span]:
    """The trace once the task and credit server spans and their statements have arrived."""

    def complete(spans: list[Span]) -> bool:
        mine = [s for s in spans if s.trace_id == trace_id]
        servers = [s for s in mine if s.name in (CREATE_TASK, CHARGE) and s.kind == SERVER]
        with_sql = {s.parent_id for s in mine if s.is_sql}
        return len(servers) == 2 and all(s.span_id in with_sql for s in servers)

    receiver.wait_for(complete)
    return receiver.trace(trace_id)


def _one(spans: list[Span], service: str, name: str, kind: int) -> Span:
    found = [s for s in spans if s.service == service and s.name == name and s.kind == kind]
    assert len(found) == 1, [(s.service, s.name, s.kind) for s in spans]
    return found[0]


def _ancestors(span: Span, by_id: dict[str, Span]) -> list[Span]:
    chain = []
    while span.parent_id in by_id:
        span = by_id[span.parent_id]
        chain.append(span)
    return chain


def _create(http: httpx.Client, headers: dict[str, str], request_id: str) -> httpx.Response:
    return http.post(
        "/api/tasks/create",
        json={"type": "video_generation", "inputData": {"prompt": "a cat"}},
        headers={**headers, "x-request-id": request_id},
    )


def test_a_created_task_is_one_trace_across_every_hop(
    receiver: OtlpReceiver, http: httpx.Client
) -> None:
    user, headers = _user(http)
    request_id = f"trace-{uuid.uuid4().hex}"
    assert _create(http, headers, request_id).status_code == 201

    edge = _edge_span(receiver, request_id)
    spans = _complete_trace(receiver, edge.trace_id)
    by_id = {s.span_id: s for s in spans}

    # One root (Envoy's span); every other span's parent is in the same trace.
    assert [s for s in spans if s.parent_id not in by_id] == [edge]
    assert not edge.parent_id
    task = _one(spans, "studiox-task", CREATE_TASK, SERVER)
    call = _one(spans, "studiox-task", CHARGE, CLIENT)
    charge = _one(spans, "studiox-credit", CHARGE, SERVER)
    assert task.parent_id == edge.span_id
    assert charge.parent_id == call.span_id
    assert task in _ancestors(call, by_id)
    # Each service's statements hang under its own call.
    task_sql = [s for s in spans if s.is_sql and s.service == "studiox-task"]
    credit_sql = [s for s in spans if s.is_sql and s.service == "studiox-credit"]
    assert task_sql
    assert credit_sql
    assert all(s.parent_id == task.span_id for s in task_sql)
    assert all(s.parent_id == charge.span_id for s in credit_sql)
    # What an operator searches by: the request id and the user, on every service span.
    for span in (task, charge):
        assert span.attributes["studiox.request_id"] == request_id
        assert span.attributes["enduser.id"] == user
    assert not any(s.is_error for s in spans)
    # Never a credential.
    token = headers["authorization"].split()[1]
    assert not any(token in str(v) for s in spans for v in s.attributes.values())


def test_a_callers_traceparent_is_continued(receiver: OtlpReceiver, http: httpx.Client) -> None:
    _, headers = _user(http)
    trace_id, parent_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    request_id = f"trace-{uuid.uuid4().hex}"
    response = _create(
        http, {**headers, "traceparent": f"00-{trace_id}-{parent_id}-01"}, request_id
    )
    assert response.status_code == 201
    edge = _edge_span(receiver, request_id)
    assert (edge.trace_id, edge.parent_id) == (trace_id, parent_id)
    spans = _complete_trace(receiver, trace_id)
    assert _one(spans, "studiox-credit", CHARGE, SERVER)


def test_a_refused_charge_marks_the_credit_span(receiver: OtlpReceiver, http: httpx.Client) -> None:
    _, headers = _user(http)
    for _ in range(2):  # spend the 10 free credits
        assert _create(http, headers, f"spend-{uuid.uuid4().hex}").status_code == 201
    request_id = f"trace-{uuid.uuid4().hex}"
    assert _create(http, headers, request_id).status_code == 402

    edge = _edge_span(receiver, request_id)
    spans = _complete_trace(receiver, edge.trace_id)
    charge = _one(spans, "studiox-credit", CHARGE, SERVER)
    assert charge.is_error
    assert charge.attributes["error.type"] == "INSUFFICIENT_CREDITS"
    assert "Insufficient credits" in charge.status_message
    # The refusal happened in credit: its statements ran fine, and nothing below it failed.
    assert not any(s.is_error for s in spans if s.parent_id == charge.span_id)
    # The task service passed the same refusal on, and the edge answered 402.
    task = _one(spans, "studiox-task", CREATE_TASK, SERVER)
    assert task.attributes["error.type"] == "INSUFFICIENT_CREDITS"
    assert str(edge.attributes.get("http.status_code")) == "402"


def test_reads_are_traced_with_their_statements(receiver: OtlpReceiver, http: httpx.Client) -> None:
    # A list page (psycopg's own API, binary results) and a single task (a `text()` statement):
    # both answer while traced, each with its statements under its own server span.
    _, headers = _user(http)
    created = _create(http, headers, f"made-{uuid.uuid4().hex}")
    assert created.status_code == 201
    task_id = created.json()["task"]["id"]
    for path, method in (("/api/tasks?limit=5", LIST_TASKS), (f"/api/tasks/{task_id}", GET_TASK)):
        request_id = f"trace-{uuid.uuid4().hex}"
        response = http.get(path, headers={**headers, "x-request-id": request_id})
        assert response.status_code == 200, response.text
        edge = _edge_span(receiver, request_id)

        def with_statements(
            spans: list[Span], trace_id: str = edge.trace_id, method: str = method
        ) -> bool:
            mine = [s for s in spans if s.trace_id == trace_id]
            return any(s.is_sql for s in mine) and any(s.name == method for s in mine)

        receiver.wait_for(with_statements)
        spans = receiver.trace(edge.trace_id)
        server = _one(spans, "studiox-task", method, SERVER)
        assert [s for s in spans if s.is_sql]
        assert all(s.parent_id == server.span_id for s in spans if s.is_sql)
