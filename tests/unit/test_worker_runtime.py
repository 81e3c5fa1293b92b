"""The worker runtime against an in-memory task service: outcomes, concurrency, heartbeats, lost
leases, retries of transient failures, and graceful shutdown."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from services.worker.client import ClaimedTask
from services.worker.config import WorkerConfig
from services.worker.processors import Processor, RetryLater, TaskFailed
from services.worker.runtime import Complete, Drop, Fail, Release, Worker
from tests.support.fake_task_queue import FakeTaskQueue


def config(**values: Any) -> WorkerConfig:
    defaults: dict[str, Any] = {
        "id": "w1",
        "concurrency": 2,
        "lease_seconds": 30,
        "poll_seconds": 0.02,
        "shutdown_grace_seconds": 5,
        "report_retry_seconds": 5,
    }
    return WorkerConfig(_env_file=None, **{**defaults, **values})


def every_type(processor: Processor) -> dict[str, Processor]:
    return {t: processor for t in ("image_analysis", "video_generation", "advanced_editing")}


async def wait_for(condition: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def started(worker: Worker) -> asyncio.Task[None]:
    return asyncio.create_task(worker.run())


async def echo(task: ClaimedTask) -> Mapping[str, Any]:
    return {"echo": task.input_data, "type": task.type}


async def test_processes_every_claimed_task_and_stores_its_output() -> None:
    queue = FakeTaskQueue()
    tasks = [queue.add("image_analysis", n=i) for i in range(5)]
    worker = Worker(queue, every_type(echo), config())
    running = await started(worker)
    await wait_for(lambda: all(t.status == "done" for t in tasks))
    worker.stop()
    await running
    assert [t.output for t in tasks] == [
        {"echo": {"n": i}, "type": "image_analysis"} for i in range(5)
    ]
    assert all(isinstance(worker.outcomes[t.id], Complete) for t in tasks)


async def test_never_runs_more_than_its_concurrency() -> None:
    queue = FakeTaskQueue()
    tasks = [queue.add() for _ in range(7)]
    running_now, peak = 0, 0

    async def slow(task: ClaimedTask) -> Mapping[str, Any]:
        nonlocal running_now, peak
        running_now += 1
        peak = max(peak, running_now)
        await asyncio.sleep(0.05)
        running_now -= 1
        return {}

    worker = Worker(queue, every_type(slow), config(concurrency=3))
    running = await started(worker)
    await wait_for(lambda: all(t.status == "done" for t in tasks))
    worker.stop()
    await running
    assert peak == 3
    # Claims ask only for free slots, so nothing sits claimed but unworked.
    assert max(t.attempts for t in tasks) == 1


async def test_task_failed_fails_the_task_with_its_message() -> None:
    queue = FakeTaskQueue()
    task = queue.add()

    async def refuse(task: ClaimedTask) -> Mapping[str, Any]:
        raise TaskFailed("The image could not be read")

    worker = Worker(queue, every_type(refuse), config())
    running = await started(worker)
    await wait_for(lambda: task.status == "failed")
    worker.stop()
    await running
    assert task.error == "The image could not be read"
    assert worker.outcomes[task.id] == Fail("The image could not be read")


@pytest.mark.parametrize("problem", [RetryLater("model busy"), RuntimeError("bug")])
async def test_transient_errors_give_the_task_back_for_a_retry(problem: Exception) -> None:
    queue = FakeTaskQueue()
    task = queue.add()
    calls = 0

    async def flaky(task: ClaimedTask) -> Mapping[str, Any]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise problem
        return {"ok": True}

    worker = Worker(queue, every_type(flaky), config())
    running = await started(worker)
    # Released with a 1 s lease; the worker's own next claim requeues and retakes it.
    await wait_for(lambda: task.status == "done", within=8)
    worker.stop()
    await running
    assert task.attempts == 2
    assert "release" in queue.calls


async def test_processor_timeout_gives_the_task_back() -> None:
    queue = FakeTaskQueue()
    task = queue.add()

    async def stuck(task: ClaimedTask) -> Mapping[str, Any]:
        await asyncio.sleep(60)
        return {}

    worker = Worker(queue, every_type(stuck), config(task_timeout_seconds=0.1))
    running = await started(worker)
    await wait_for(lambda: task.id in worker.outcomes)
    worker.stop()
    await running
    assert worker.outcomes[task.id] == Release("processing timed out")


@pytest.mark.parametrize("output", [["not", "an", "object"], {"when": {1, 2}}])
async def test_output_that_is_no_json_object_is_not_stored(output: Any) -> None:
    queue = FakeTaskQueue()
    task = queue.add()

    async def wrong(task: ClaimedTask) -> Any:
        return output

    worker = Worker(queue, every_type(wrong), config())
    running = await started(worker)
    await wait_for(lambda: task.id in worker.outcomes)
    worker.stop()
    await running
    assert isinstance(worker.outcomes[task.id], Release)
    assert task.output is None


async def test_heartbeats_keep_the_lease_of_long_work() -> None:
    queue = FakeTaskQueue()
    task = queue.add()

    async def long(task: ClaimedTask) -> Mapping[str, Any]:
        await asyncio.sleep(2.3)
        return {"done": True}

    # A 3 s lease is renewed every second; without heartbeats it would run out before the end.
    worker = Worker(queue, every_type(long), config(lease_seconds=3))
    running = await started(worker)
    await wait_for(lambda: task.status == "done", within=6)
    worker.stop()
    await running
    assert task.heartbeats >= 2
    assert task.attempts == 1


async def test_a_task_cancelled_meanwhile_stops_its_processor_and_reports_nothing() -> None:
    queue = FakeTaskQueue()
    task = queue.add()
    interrupted = asyncio.Event()

    async def long(task: ClaimedTask) -> Mapping[str, Any]:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            interrupted.set()
            raise
        return {}

    worker = Worker(queue, every_type(long), config(lease_seconds=3))
    running = await started(worker)
    await wait_for(lambda: task.status == "processing")
    queue.cancel(task.id)
    await asyncio.wait_for(interrupted.wait(), 3)  # noticed at the next heartbeat
    await wait_for(lambda: task.id in worker.outcomes)
    worker.stop()
    await running
    assert worker.outcomes[task.id] == Drop("lease lost")
    assert task.status == "cancelled"
    assert "complete" not in queue.calls
    assert "fail" not in queue.calls


async def test_outcomes_are_retried_while_the_task_service_is_unreachable() -> None:
    queue = FakeTaskQueue(outages={"claim": 2, "complete": 3})
    task = queue.add()
    worker = Worker(queue, every_type(echo), config())
    running = await started(worker)
    await wait_for(lambda: task.status == "done", within=8)
    worker.stop()
    await running
    assert queue.calls.count("complete") == 4
    assert task.attempts == 1


async def test_plain_functions_run_off_the_event_loop() -> None:
    queue = FakeTaskQueue()
    task = queue.add()
    loop_thread = threading.get_ident()

    def blocking(task: ClaimedTask) -> Mapping[str, Any]:
        time.sleep(0.05)
        return {"thread_is_loop": threading.get_ident() == loop_thread}

    worker = Worker(queue, every_type(blocking), config())
    running = await started(worker)
    await wait_for(lambda: task.status == "done")
    worker.stop()
    await running
    assert task.output == {"thread_is_loop": False}


async def test_shutdown_lets_in_flight_work_finish_within_the_grace_period() -> None:
    queue = FakeTaskQueue()
    task = queue.add()
    waiting = queue.add()

    async def medium(task: ClaimedTask) -> Mapping[str, Any]:
        await asyncio.sleep(0.3)
        return {"finished": True}

    worker = Worker(queue, every_type(medium), config(concurrency=1))
    running = await started(worker)
    await wait_for(lambda: task.status == "processing")
    worker.stop()
    await asyncio.wait_for(running, 3)
    assert task.status == "done"
    assert waiting.status == "pending"  # nothing new is claimed after stop()


async def test_shutdown_releases_work_that_outlasts_the_grace_period() -> None:
    queue = FakeTaskQueue()
    task = queue.add()

    async def endless(task: ClaimedTask) -> Mapping[str, Any]:
        await asyncio.sleep(60)
        return {}

    worker = Worker(queue, every_type(endless), config(shutdown_grace_seconds=0.2))
    running = await started(worker)
    await wait_for(lambda: task.status == "processing")
    began = time.monotonic()
    worker.stop()
    await asyncio.wait_for(running, 3)
    assert time.monotonic() - began < 1.5
    assert worker.outcomes[task.id] == Release("worker shutting down")
    # The lease now ends within a second: the next claim by anyone requeues the task.
    await asyncio.sleep(1.1)
    claimed = await queue.claim(1, 30, "w2")
    assert [c.id for c in claimed] == [task.id]


async def test_a_second_stop_skips_the_rest_of_the_grace_period() -> None:
    queue = FakeTaskQueue()
    task = queue.add()

    async def endless(task: ClaimedTask) -> Mapping[str, Any]:
        await asyncio.sleep(60)
        return {}

    worker = Worker(queue, every_type(endless), config(shutdown_grace_seconds=30))
    running = await started(worker)
    await wait_for(lambda: task.status == "processing")
    worker.stop()
    await asyncio.sleep(0.1)
    assert not running.done()
    worker.stop()
    await asyncio.wait_for(running, 2)
    assert worker.outcomes[task.id] == Release("worker shutting down")
