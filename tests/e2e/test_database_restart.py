"""PostgreSQL restarts under traffic: requests in the gap get 503 (never 500), the stack recovers
by itself, and repair leaves every task settled and the ledger verifying."""

from __future__ import annotations

import random
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import httpx

from studiox.credit.v1 import credit_pb2, credit_pb2_grpc
from studiox.task.v1 import task_pb2, task_pb2_grpc
from tests.e2e.test_tasks import grant_purchased
from tests.support.cluster import INTERNAL_TOKEN
from tests.support.settlement import settlement_problems
from tests.support.stack import Stack
from tests.support.tokens import DEFAULT_KEY, new_user_id

INTERNAL = (("x-internal-token", INTERNAL_TOKEN),)


def _traffic(
    stack: Stack, users: list[dict[str, str]], stop: threading.Event, seed: int
) -> dict[int, int]:
    rng = random.Random(seed)
    seen: dict[int, int] = {}
    with httpx.Client(base_url=stack.base_url, timeout=20) as http:
        while not stop.is_set():
            user = rng.choice(users)
            try:
                if rng.random() < 0.5:
                    status = http.get("/api/users/credits", headers=user).status_code
                else:
                    status = http.post(
                        "/api/tasks/create", json={"type": "image_analysis"}, headers=user
                    ).status_code
            except httpx.HTTPError:
                status = 0
            seen[status] = seen.get(status, 0) + 1
            time.sleep(0.01)
    return seen


def test_postgres_restart_under_traffic(stack: Stack) -> None:
    if stack.database_url:  # an external server is not ours to restart
        return
    users = []
    with stack.client() as http:
        for _ in range(4):
            user_id = new_user_id()
            headers = {"authorization": f"Bearer {DEFAULT_KEY.mint(user_id, lifetime=900)}"}
            http.post("/api/users/initialize", json={"email": "pg@example.com"}, headers=headers)
            grant_purchased(stack, user_id, 500)
            users.append(headers)

    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=6) as pool:
        futures = [pool.submit(_traffic, stack, users, stop, seed) for seed in range(6)]
        time.sleep(1.5)
        stack.stop_process("postgres", signal.SIGINT)  # fast shutdown: sessions are cut
        time.sleep(1.5)
        stack.start_process("postgres")
        started = time.monotonic()
        stack.wait_healthy(60)
        recovered = time.monotonic() - started
        time.sleep(2.0)
        stop.set()
        seen: dict[int, int] = {}
        for future in futures:
            for status, n in future.result().items():
                seen[status] = seen.get(status, 0) + n

    assert recovered < 30
    assert 500 not in seen, seen  # an unreachable database is "unavailable", not a crash
    assert set(seen) <= {0, 200, 201, 503}, seen
    with stack.client() as http:  # healthy again for real traffic
        assert http.get("/api/users/credits", headers=users[0]).status_code == 200
    with grpc.insecure_channel(stack.settings.task_service_addr) as channel:
        task_pb2_grpc.TaskInternalServiceStub(channel).RepairOrphans(
            task_pb2.RepairOrphansRequest(min_age_seconds=0), metadata=INTERNAL, timeout=60
        )
    assert settlement_problems(stack.settings.embedded.url()) == []
    with grpc.insecure_channel(stack.settings.credit_service_addr) as channel:
        report = credit_pb2_grpc.CreditInternalServiceStub(channel).VerifyLedger(
            credit_pb2.VerifyLedgerRequest(), metadata=INTERNAL, timeout=60
        )
    assert list(report.differences) == []
