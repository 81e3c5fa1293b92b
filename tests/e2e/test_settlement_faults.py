"""A task priced by usage, through the gateway, with both services SIGKILLed between its
completion and its settlement: after restart and repair the user has paid exactly what the work
measured, once, and the ledger verifies."""

from __future__ import annotations

import grpc
import psycopg

from studiox.credit.v1 import credit_pb2, credit_pb2_grpc
from studiox.task.v1 import task_pb2, task_pb2_grpc
from tests.e2e.test_tasks import grant_purchased
from tests.support.cluster import INTERNAL_TOKEN
from tests.support.settlement import settlement_problems
from tests.support.stack import Stack
from tests.support.tokens import DEFAULT_KEY, new_user_id

INTERNAL = (("x-internal-token", INTERNAL_TOKEN),)


def _tasks(stack: Stack) -> tuple[grpc.Channel, task_pb2_grpc.TaskInternalServiceStub]:
    channel = grpc.insecure_channel(stack.settings.task_service_addr)
    return channel, task_pb2_grpc.TaskInternalServiceStub(channel)


def _claim(stack: Stack, task_id: str) -> None:
    channel, internal = _tasks(stack)
    with channel:
        for _ in range(20):
            reply = internal.ClaimPending(
                task_pb2.ClaimPendingRequest(limit=100, lease_seconds=600, worker_id="e2e"),
                metadata=INTERNAL,
                timeout=10,
            )
            if task_id in {t.id for t in reply.tasks}:
                return
    raise AssertionError("the task was never claimed")


def _repair(stack: Stack) -> task_pb2.RepairOrphansResponse:
    channel, internal = _tasks(stack)
    with channel:
        return internal.RepairOrphans(
            task_pb2.RepairOrphansRequest(min_age_seconds=0), metadata=INTERNAL, timeout=60
        )


def test_kills_between_completion_and_settlement_charge_the_measured_cost(stack: Stack) -> None:
    user_id = new_user_id()
    headers = {"authorization": f"Bearer {DEFAULT_KEY.mint(user_id, lifetime=900)}"}
    with stack.client() as http:
        assert (
            http.post(
                "/api/users/initialize", json={"email": "s@example.com"}, headers=headers
            ).status_code
            == 201
        )
        grant_purchased(stack, user_id, 50)
        before = http.get("/api/users/credits", headers=headers).json()["credits"]
        created = http.post(
            "/api/tasks/create",
            json={"type": "video_generation", "inputData": {"durationSeconds": 10}},
            headers=headers,
        )
        assert created.status_code == 201, created.text
        assert created.json()["creditDeducted"] == 11
        task_id = created.json()["task"]["id"]
        held = http.get("/api/users/credits", headers=headers).json()["credits"]
        assert (held["reservedCredits"], held["availableCredits"]) == (
            11,
            before["currentCredits"] - 11,
        )

    _claim(stack, task_id)
    stack.kill_process("credit")
    channel, _ = _tasks(stack)
    with channel:  # the worker reports a 4-second clip (1 + 4 = 5 credits); the ledger is down
        done = task_pb2_grpc.TaskServiceStub(channel).UpdateStatus(
            task_pb2.UpdateStatusRequest(id=task_id, status="done", usage={"seconds": 4.0}),
            metadata=INTERNAL,
            timeout=30,
        )
    assert (done.task.status, done.task.credits_cost) == ("done", 5)
    stack.kill_process("task")
    stack.start_process("credit")
    stack.start_process("task")
    stack.wait_healthy(60)

    assert _repair(stack).settled >= 1
    database_url = stack.database_url or stack.settings.embedded.url()
    # And a crash after the ledger settled but before the task recorded it: settled again, the
    # ledger changes nothing.
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE tasks.tasks SET charge_state = 'settling' WHERE id = %s", (task_id,))
    assert _repair(stack).settled >= 1

    with stack.client() as http:
        after = http.get("/api/users/credits", headers=headers).json()["credits"]
        task = http.get(f"/api/tasks/{task_id}", headers=headers).json()["task"]
    assert after["currentCredits"] == before["currentCredits"] - 5
    assert after["reservedCredits"] == 0
    assert (task["creditsCost"], task["creditsReserved"], task["usage"]) == (
        5,
        11,
        {"seconds": 4.0},
    )
    assert settlement_problems(database_url) == []
    with grpc.insecure_channel(stack.settings.credit_service_addr) as credit:
        report = credit_pb2_grpc.CreditInternalServiceStub(credit).VerifyLedger(
            credit_pb2.VerifyLedgerRequest(), metadata=INTERNAL, timeout=60
        )
    assert list(report.differences) == []
