"""`SERVICE_WORKERS=2`: every service twice behind Envoy; losing one replica costs no request."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.database import drop_database, new_database
from tests.support.dirs import server_tempdir
from tests.support.stack import Stack
from tests.support.tokens import DEFAULT_KEY, new_user_id


@pytest.fixture(scope="module")
def replicated() -> Iterator[Stack]:
    database_url = (
        new_database(os.environ["DATABASE_URL"]) if os.environ.get("DATABASE_URL") else None
    )
    with server_tempdir("replicas") as folder:
        stack = Stack(folder, database_url, extra_env={"SERVICE_WORKERS": "2"})
        try:
            stack.start()
            yield stack
        finally:
            stack.close()
            if database_url:
                drop_database(database_url)


def test_two_processes_per_service(replicated: Stack) -> None:
    for service in ("user", "credit", "task", "billing", "scheduler"):
        assert {f"{service}.1", f"{service}.2"} <= set(replicated.commands)
    assert "," in replicated.env["CREDIT_SERVICE_ADDR"]
    with replicated.client() as http:
        assert http.get("/health").json()["status"] == "ok"


def test_a_dead_replica_costs_no_request(replicated: Stack) -> None:
    headers = {"authorization": f"Bearer {DEFAULT_KEY.mint(new_user_id())}"}
    with replicated.client() as http:
        assert (
            http.post(
                "/api/users/initialize", json={"email": "r@example.com"}, headers=headers
            ).status_code
            == 201
        )
        replicated.kill_process("credit.1")
        try:
            reads = [http.get("/api/users/credits", headers=headers).status_code for _ in range(20)]
            writes = [
                http.post(
                    "/api/tasks/create", json={"type": "image_analysis"}, headers=headers
                ).status_code
                for _ in range(5)
            ]
        finally:
            replicated.start_process("credit.1")
        assert reads == [200] * 20
        assert writes == [201] * 5
        credits = http.get("/api/users/credits", headers=headers).json()["credits"]
        assert credits["currentCredits"] == 5
