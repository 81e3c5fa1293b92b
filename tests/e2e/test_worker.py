"""`studiox worker --demo` as a real process against the real stack: tasks created through the
gateway reach `done`, and SIGTERM finishes or releases in-flight work (nothing left stuck)."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from devstack.stack import studiox
from studiox.task.v1 import task_pb2, task_pb2_grpc
from tests.e2e.test_tasks import signed_up
from tests.support.cluster import internal_metadata
from tests.support.stack import Stack

DONE_WITHIN_SECONDS = 15


@contextmanager
def worker_process(stack: Stack, log_name: str, **env: str) -> Iterator[subprocess.Popen[bytes]]:
    log = (stack.root / f"{log_name}.log").open("ab")
    proc = subprocess.Popen(
        studiox("worker", "--demo"),
        env={**stack.env, "WORKER_POLL_SECONDS": "0.2", **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()


def internal_tasks(stack: Stack) -> tuple[grpc.Channel, task_pb2_grpc.TaskInternalServiceStub]:
    channel = grpc.insecure_channel(stack.env["TASK_SERVICE_ADDR"].split(",")[0])
    return channel, task_pb2_grpc.TaskInternalServiceStub(channel)


@pytest.fixture(scope="module", autouse=True)
def leftovers_set_aside(stack: Stack) -> None:
    """Earlier tests leave pending tasks behind; hold them under another lease so the workers here
    only see this module's tasks (and the timings below are theirs)."""
    channel, stub = internal_tasks(stack)
    with channel:
        while stub.ClaimPending(
            task_pb2.ClaimPendingRequest(limit=100, lease_seconds=3600, worker_id="e2e-aside"),
            metadata=internal_metadata(),
        ).tasks:
            pass


def create(http: httpx.Client, user: dict[str, str], task_type: str, **data: Any) -> str:
    reply = http.post(
        "/api/tasks/create", json={"type": task_type, "inputData": data}, headers=user
    )
    assert reply.status_code == 201, reply.text
    return str(reply.json()["task"]["id"])


def wait_status(
    http: httpx.Client, user: dict[str, str], task_id: str, wanted: str, within: float
) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        task: dict[str, Any] = http.get(f"/api/tasks/{task_id}", headers=user).json()["task"]
        if task["status"] == wanted:
            return task
        assert time.monotonic() < deadline, f"task still {task['status']} after {within}s"
        time.sleep(0.2)


def log_of(stack: Stack, name: str) -> str:
    return Path(stack.root / f"{name}.log").read_text(errors="replace")


def test_tasks_created_through_the_gateway_reach_done(stack: Stack, http: httpx.Client) -> None:
    user = signed_up(http)
    with worker_process(stack, "worker-done") as proc:
        started = time.monotonic()
        image = create(http, user, "image_analysis", url="https://example.com/cat.png")
        video = create(http, user, "video_generation", prompt="a sunset")
        analysed = wait_status(http, user, image, "done", DONE_WITHIN_SECONDS)
        generated = wait_status(http, user, video, "done", DONE_WITHIN_SECONDS)
        assert time.monotonic() - started < DONE_WITHIN_SECONDS
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    assert analysed["outputData"]["demo"] is True
    assert analysed["outputData"]["input"]["text"] == ["https://example.com/cat.png"]
    assert generated["outputData"]["videoUrl"].endswith(f"/{video}.mp4")
    assert generated["completedAt"]
    # Done work keeps its charge: 10 free credits - 1 - 5.
    assert http.get("/api/users/credits", headers=user).json()["credits"]["currentCredits"] == 4
    assert "Traceback" not in log_of(stack, "worker-done")


def test_a_failing_processor_fails_the_task_with_a_refund(stack: Stack, http: httpx.Client) -> None:
    user = signed_up(http)
    with worker_process(stack, "worker-fail") as proc:
        task_id = create(http, user, "video_generation", demoFail="demo failure", demoSeconds=0)
        failed = wait_status(http, user, task_id, "failed", DONE_WITHIN_SECONDS)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    assert failed["error"] == "demo failure"
    assert http.get("/api/users/credits", headers=user).json()["credits"]["currentCredits"] == 10


def test_sigterm_lets_in_flight_work_finish(stack: Stack, http: httpx.Client) -> None:
    user = signed_up(http)
    with worker_process(stack, "worker-finish", WORKER_SHUTDOWN_GRACE_SECONDS="20") as proc:
        task_id = create(http, user, "video_generation", demoSeconds=2)
        wait_status(http, user, task_id, "processing", DONE_WITHIN_SECONDS)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    assert http.get(f"/api/tasks/{task_id}", headers=user).json()["task"]["status"] == "done"


def test_sigterm_releases_work_that_outlasts_the_grace_period(
    stack: Stack, http: httpx.Client
) -> None:
    user = signed_up(http)
    with worker_process(stack, "worker-release", WORKER_SHUTDOWN_GRACE_SECONDS="0.5") as proc:
        task_id = create(http, user, "video_generation", demoSeconds=60)
        wait_status(http, user, task_id, "processing", DONE_WITHIN_SECONDS)
        began = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert time.monotonic() - began < 5
    # The 60 s lease was given back: within a second the next claim (here: lease upkeep only, as
    # the scheduler does) puts the task back to pending for any worker.
    time.sleep(1.2)
    channel, stub = internal_tasks(stack)
    with channel:
        stub.ClaimPending(task_pb2.ClaimPendingRequest(limit=0), metadata=internal_metadata())
    task = http.get(f"/api/tasks/{task_id}", headers=user).json()["task"]
    assert task["status"] == "pending"
    assert "Traceback" not in log_of(stack, "worker-release")
