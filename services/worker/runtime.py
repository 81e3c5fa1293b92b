"""The worker loop: claim as many tasks as there are free slots, run each one's processor while a
heartbeat keeps its lease, and report how it ended.

How a task ends (see services.worker.processors for what processors raise):
- output             -> `done` with that output;
- `TaskFailed`       -> `failed` with the message (the task service refunds);
- anything else, a timeout, or shutdown after the grace period -> the lease is released and the
  task retried by the next claim, until the service's attempt limit fails it with a refund;
- lease lost (requeued, cancelled by its user, finished elsewhere) -> the processor is stopped and
  nothing is reported.

Outcomes are retried while the task service is unreachable (the heartbeat keeps the lease
meanwhile), so a restart of the task service does not turn finished work into a retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from services.kit.context import request_id_var
from services.worker.client import (
    ClaimedTask,
    LeaseLost,
    QueueRefused,
    QueueUnavailable,
    TaskQueue,
    to_struct,
)
from services.worker.config import WorkerConfig
from services.worker.processors import Measured, Output, Processor, Result, TaskFailed

log = logging.getLogger("studiox.worker")

MAX_BACKOFF_SECONDS = 10.0
# Shown to users when a processor's output cannot be stored; the details go to the log.
UNSTORABLE_OUTPUT = "Processing produced a result that could not be stored"


@dataclass(frozen=True)
class Complete:
    output: Output
    usage: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Fail:
    error: str


@dataclass(frozen=True)
class Release:
    reason: str


@dataclass(frozen=True)
class Drop:
    reason: str


Outcome = Complete | Fail | Release | Drop


@dataclass
class _InFlight:
    task: ClaimedTask
    work: asyncio.Task[Result] | None = None
    handler: asyncio.Task[None] | None = None
    lost: bool = False
    abandoned: bool = False
    outcome: Outcome | None = None


def _is_async(processor: Processor) -> bool:
    call = getattr(processor, "__call__", None)  # noqa: B004 - callable objects with async __call__
    return inspect.iscoroutinefunction(processor) or inspect.iscoroutinefunction(call)


class Worker:
    def __init__(
        self, queue: TaskQueue, processors: Mapping[str, Processor], config: WorkerConfig
    ) -> None:
        self._queue = queue
        self._processors = dict(processors)
        self._config = config
        self._inflight: dict[str, _InFlight] = {}
        self._stopping = asyncio.Event()
        self._no_grace = asyncio.Event()
        self._slot_freed = asyncio.Event()
        # Every outcome reported, for tests and the final log line.
        self.outcomes: dict[str, Outcome] = {}

    @property
    def in_flight(self) -> int:
        return len(self._inflight)

    def stop(self) -> None:
        """Stop claiming and let in-flight tasks finish within the grace period; a second call
        skips what is left of the grace period (their leases are released at once)."""
        if self._stopping.is_set():
            self._no_grace.set()
        self._stopping.set()

    async def run(self) -> None:
        """Claim and process until `stop()`; then drain. A refused claim (bad credential) ends the
        run with QueueRefused after draining."""
        log.info(
            "worker %s started: %d at once, types %s",
            self._config.id,
            self._config.concurrency,
            ", ".join(sorted(self._processors)),
            extra={
                "worker": self._config.id,
                "concurrency": self._config.concurrency,
                "types": sorted(self._processors),
            },
        )
        try:
            await self._claim_loop()
        finally:
            await self._drain()
            log.info("worker stopped", extra={"worker": self._config.id})

    # --- claiming -------------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        backoff = self._config.poll_seconds
        while not self._stopping.is_set():
            free = self._config.concurrency - len(self._inflight)
            if free <= 0:
                self._slot_freed.clear()
                await self._until(self._slot_freed, None)
                continue
            try:
                claimed = await self._queue.claim(free, self._config.lease_seconds, self._config.id)
            except QueueUnavailable as exc:
                log.warning("cannot claim tasks, retrying in %.1fs: %s", backoff, exc)
                await self._until(self._stopping, backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                continue
            backoff = self._config.poll_seconds
            for task in claimed:
                self._start(task)
            if len(claimed) < free:
                await self._until(self._stopping, self._config.poll_seconds)

    @staticmethod
    async def _until(event: asyncio.Event, seconds: float | None) -> None:
        """Wait for `event`, at most `seconds` (None: no limit)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), seconds)

    def _start(self, task: ClaimedTask) -> None:
        flight = _InFlight(task)
        self._inflight[task.id] = flight
        flight.handler = asyncio.create_task(self._handle(flight), name=f"task-{task.id}")

    # --- one task -------------------------------------------------------------------------

    async def _handle(self, flight: _InFlight) -> None:
        task = flight.task
        # Logs here and in the services this task's calls reach carry the task id.
        request_id_var.set(task.id)
        log.info("processing %s task", task.type, extra={"task_id": task.id, "type": task.type})
        started = time.monotonic()
        heartbeat = asyncio.create_task(self._keep_lease(flight))
        try:
            outcome = await self._process(flight)
            if flight.lost and not isinstance(outcome, Drop):
                outcome = Drop("lease lost")
            flight.outcome = await self._settle(task, outcome)
            self.outcomes[task.id] = flight.outcome
            elapsed = round((time.monotonic() - started) * 1000)
            log.info(
                "%s task: %s after %d ms",
                task.type,
                type(flight.outcome).__name__.lower(),
                elapsed,
                extra={
                    "task_id": task.id,
                    "type": task.type,
                    "ms": elapsed,
                    "reason": getattr(flight.outcome, "reason", None)
                    or getattr(flight.outcome, "error", None),
                },
            )
        finally:
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)
            del self._inflight[task.id]
            self._slot_freed.set()

    async def _process(self, flight: _InFlight) -> Outcome:
        processor = self._processors.get(flight.task.type)
        if processor is None:
            return Release(f"no processor for task type {flight.task.type!r}")
        if flight.abandoned:  # claimed just as the grace period ran out
            return Release("worker shutting down")
        flight.work = asyncio.create_task(self._invoke(processor, flight.task))
        # wait() rather than await: the work may be cancelled (lease lost, shutdown) while this
        # handler itself must go on to report.
        await asyncio.wait({flight.work})
        if flight.work.cancelled():
            return Drop("lease lost") if flight.lost else Release("worker shutting down")
        error = flight.work.exception()
        if error is None:
            output = flight.work.result()
            if isinstance(output, Measured):
                if not isinstance(output.output, Mapping):
                    log.error("processor for %s measured no JSON object", flight.task.type)
                    return Release("processor returned no JSON object")
                return Complete(output.output, output.usage)
            if not isinstance(output, Mapping):
                log.error("processor for %s returned %s", flight.task.type, type(output).__name__)
                return Release("processor returned no JSON object")
            return Complete(output)
        if isinstance(error, TaskFailed):
            return Fail(error.message)
        if isinstance(error, TimeoutError):
            return Release("processing timed out")
        log.warning("processor for %s raised", flight.task.type, exc_info=error)
        return Release(f"processor error: {type(error).__name__}")

    async def _invoke(self, processor: Processor, task: ClaimedTask) -> Result:
        limit = self._config.task_timeout_seconds or None
        async with asyncio.timeout(limit):
            if _is_async(processor):
                result = processor(task)
                assert inspect.isawaitable(result)
                return await result
            # Blocking code must not stop heartbeats; a thread cannot be interrupted, though.
            return await asyncio.to_thread(processor, task)  # type: ignore[arg-type]

    async def _keep_lease(self, flight: _InFlight) -> None:
        interval = self._config.lease_seconds / 3
        while True:
            await asyncio.sleep(interval)
            try:
                await self._queue.heartbeat(
                    flight.task.id, self._config.id, self._config.lease_seconds
                )
            except LeaseLost as exc:
                log.info("task is no longer ours: %s", exc, extra={"task_id": flight.task.id})
                flight.lost = True
                if flight.work is not None and not flight.work.done():
                    flight.work.cancel()
                return
            except (QueueUnavailable, QueueRefused) as exc:
                # Try again sooner; the lease still has two intervals to run.
                log.warning("heartbeat failed: %s", exc, extra={"task_id": flight.task.id})
                interval = max(self._config.lease_seconds / 6, 0.5)
            else:
                interval = self._config.lease_seconds / 3

    async def _settle(self, task: ClaimedTask, outcome: Outcome) -> Outcome:
        if isinstance(outcome, Complete):
            try:
                to_struct(outcome.output)
            except (TypeError, ValueError) as exc:
                log.error("unstorable output of %s: %s", task.type, exc)
                return await self._settle(task, Release("processor returned unstorable output"))
            try:
                await self._report(
                    lambda: self._queue.complete(task.id, outcome.output, outcome.usage)
                )
            except QueueRefused as exc:
                log.error("output refused by the task service: %s", exc)
                return await self._settle(task, Fail(UNSTORABLE_OUTPUT))
        elif isinstance(outcome, Fail):
            await self._report(lambda: self._queue.fail(task.id, outcome.error))
        elif isinstance(outcome, Release):
            # Best effort: if the service cannot be told, the lease simply runs out.
            try:
                await self._report(
                    lambda: self._queue.release(task.id, self._config.id),
                    patience=min(self._config.report_retry_seconds, 5.0),
                )
            except QueueRefused as exc:
                log.warning("release refused: %s", exc)
        return outcome

    async def _report(
        self, call: Callable[[], Awaitable[Any]], patience: float | None = None
    ) -> None:
        """Run `call` until it succeeds, retrying transient failures for `patience` seconds (less
        once shutdown has run out of grace). A lost task is not an error: someone else owns it."""
        deadline = time.monotonic() + (
            self._config.report_retry_seconds if patience is None else patience
        )
        delay = 0.2
        while True:
            try:
                await call()
                return
            except LeaseLost as exc:
                log.info("outcome not recorded, task is no longer ours: %s", exc)
                return
            except QueueUnavailable as exc:
                if time.monotonic() + delay > deadline or self._no_grace.is_set():
                    log.error("outcome could not be reported (the lease will expire): %s", exc)
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    # --- shutdown -------------------------------------------------------------------------

    async def _drain(self) -> None:
        handlers = {f.handler for f in self._inflight.values() if f.handler is not None}
        if not handlers:
            return
        grace = self._config.shutdown_grace_seconds
        log.info("finishing %d in-flight task(s) within %.0fs", len(handlers), grace)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        no_grace = asyncio.create_task(self._no_grace.wait())
        pending = set(handlers)
        while pending and not self._no_grace.is_set() and loop.time() < deadline:
            await asyncio.wait(
                [*pending, no_grace],
                timeout=deadline - loop.time(),
                return_when=asyncio.FIRST_COMPLETED,
            )
            pending = {h for h in pending if not h.done()}
        no_grace.cancel()
        # Out of grace: stop the processors; their handlers give the leases back.
        self._no_grace.set()
        for flight in list(self._inflight.values()):
            flight.abandoned = True
            if flight.work is not None and not flight.work.done():
                flight.work.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
