"""Fault injection: SIGKILL the credit service, then the task service, in the middle of a burst of
creates and cancels through the gateway; after restart and repair every task is settled exactly
once and the ledger verifies."""

from __future__ import annotations

import random
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
BURST_SECONDS = 9.0
USERS = 6


def _burst(
    stack: Stack, users: list[dict[str, str]], stop: threading.Event, seed: int
) -> dict[int, int]:
    rng = random.Random(seed)
    outcomes: dict[int, int] = {}
    mine: list[tuple[dict[str, str], str]] = []
    with httpx.Client(base_url=stack.base_url, timeout=20) as http:
        while not stop.is_set():
            user = rng.choice(users)
            try:
                if mine and rng.random() < 0.35:
                    owner, task_id = mine.pop(rng.randrange(len(mine)))
                    response = http.patch(f"/api/tasks/{task_id}/cancel", headers=owner)
                else:
                    headers = dict(user)
                    kind = rng.choice(["image_analysis", "video_generation"])
                    if rng.random() < 0.3:  # retries of earlier creates, as a client would send
                        headers["idempotency-key"] = f"k{seed}-{kind}-{rng.randrange(40)}"
                    response = http.post("/api/tasks/create", json={"type": kind}, headers=headers)
                    if response.status_code == 201:
                        mine.append((user, response.json()["task"]["id"]))
                outcomes[response.status_code] = outcomes.get(response.status_code, 0) + 1
            except httpx.HTTPError:
                outcomes[0] = outcomes.get(0, 0) + 1
    return outcomes


def test_kills_during_a_burst_leave_every_task_settled_once(stack: Stack) -> None:
    users = []
    with stack.client() as http:
        for _ in range(USERS):
            user_id = new_user_id()
            headers = {"authorization": f"Bearer {DEFAULT_KEY.mint(user_id, lifetime=900)}"}
            assert (
                http.post(
                    "/api/users/initialize", json={"email": "f@example.com"}, headers=headers
                ).status_code
                == 201
            )
            grant_purchased(stack, user_id, 200)
            users.append(headers)

    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(_burst, stack, users, stop, seed) for seed in range(8)]
        time.sleep(1.5)
        stack.kill_process("credit")
        time.sleep(1.5)
        stack.start_process("credit")
        time.sleep(2.0)
        stack.kill_process("task")
        time.sleep(1.0)
        stack.start_process("task")
        time.sleep(max(0.0, BURST_SECONDS - 6.0))
        stop.set()
        outcomes: dict[int, int] = {}
        for future in futures:
            for status, count in future.result().items():
                outcomes[status] = outcomes.get(status, 0) + count

    stack.wait_healthy(60)
    assert outcomes.get(201, 0) > 20, outcomes  # the burst did real work around the kills
    assert set(outcomes) <= {0, 200, 201, 402, 409, 503, 504}, outcomes

    with grpc.insecure_channel(stack.settings.task_service_addr) as channel:
        repair = task_pb2_grpc.TaskInternalServiceStub(channel).RepairOrphans
        for _ in range(2):
            repair(task_pb2.RepairOrphansRequest(min_age_seconds=0), metadata=INTERNAL, timeout=60)

    database_url = stack.database_url or stack.settings.embedded.url()
    assert settlement_problems(database_url) == []
    with grpc.insecure_channel(stack.settings.credit_service_addr) as channel:
        report = credit_pb2_grpc.CreditInternalServiceStub(channel).VerifyLedger(
            credit_pb2.VerifyLedgerRequest(), metadata=INTERNAL, timeout=60
        )
    assert list(report.differences) == []
