"""The scheduler: jobs through the same runner as the CLI, leadership among replicas, catch-up."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import grpc
import psycopg
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.credit.domain import add_months
from services.kit.clients import ServiceChannels
from services.kit.db import Database
from services.kit.migrate import upgrade
from services.kit.server import start_server
from services.scheduler.domain import last_daily_slot, parse_daily_time
from services.scheduler.jobs import JobRunner, Jobs
from services.scheduler.wiring import build_spec
from tests.support.cluster import INTERNAL_TOKEN, Cluster, make_settings, quiet_scheduler
from tests.support.credit import FREE, CreditClient
from tests.support.ports import free_port
from tests.support.stack import stop_group
from tests.support.tasks import TaskClient


def runs(url: str, job: str | None = None) -> list[tuple[str, str, str, str | None]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT job, instance, trigger, outcome FROM scheduler.job_runs"
            " WHERE %(job)s::text IS NULL OR job = %(job)s ORDER BY id",
            {"job": job},
        ).fetchall()


def backdate(url: str, user: str) -> None:
    anchor = datetime.now(UTC) - timedelta(days=35)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "UPDATE credit.accounts SET reset_anchor = %s, credit_reset_at = %s WHERE user_id = %s",
            (anchor, add_months(anchor, 1), user),
        )


@pytest.fixture
def scheduler_db(fresh_database: str) -> str:
    """The scheduler's own schema in a database of its own (so its leader lock is not the
    session cluster's); the jobs still call the session cluster's credit and task services."""
    upgrade("scheduler", make_settings(fresh_database))
    return fresh_database


async def test_jobs_do_their_work_and_are_recorded(
    cluster: Cluster, credit: CreditClient, scheduler_db: str
) -> None:
    user = await credit.open_account(FREE, purchased=5)
    backdate(cluster.settings.database_url, user)
    await credit.charge(user, 7, key="spent")
    tasks = TaskClient(cluster.channel("task"), user)
    created = await tasks.create("image_analysis")

    settings = make_settings(scheduler_db, **_addresses(cluster))
    db, channels = Database(settings), ServiceChannels(settings)
    config = quiet_scheduler(claim_limit=100, instance="test")
    runner = JobRunner(db, Jobs(channels, config), config.instance)
    try:
        reset = await runner.run("credit-reset", trigger="manual")
        processed = await runner.run("process-tasks", trigger="manual")
        repaired = await runner.run("repair", trigger="manual")
    finally:
        await channels.close()
        await db.close()

    assert reset.outcome == processed.outcome == repaired.outcome == "ok"
    assert reset.counts["accounts"] >= 1
    account = await credit.account(user)
    assert (account.allowance_credits, account.purchased_credits) == (10, 5)
    assert processed.counts["claimed"] >= 1
    assert (await tasks.get(created.task.id)).status == "processing"
    assert [r[:3] for r in runs(scheduler_db)] == [
        ("credit-reset", "test", "manual"),
        ("process-tasks", "test", "manual"),
        ("repair", "test", "manual"),
    ]


def _addresses(cluster: Cluster) -> dict[str, str]:
    return {
        "credit_service_addr": cluster.settings.credit_service_addr,
        "task_service_addr": cluster.settings.task_service_addr,
    }


def _env(cluster: Cluster, url: str, instance: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": url,
        "CREDIT_SERVICE_ADDR": cluster.settings.credit_service_addr,
        "TASK_SERVICE_ADDR": cluster.settings.task_service_addr,
        "INTERNAL_SERVICE_TOKEN": INTERNAL_TOKEN,
        "GRPC_PORT": str(free_port()),
        "LOG_FORMAT": "text",
        "SCHEDULER_INSTANCE": instance,
        "SCHEDULER_CLAIM_LIMIT": "0",
        "SCHEDULER_PROCESS_EVERY_SECONDS": "1",
        "SCHEDULER_REPAIR_EVERY_SECONDS": "1",
        "SCHEDULER_LEADER_POLL_SECONDS": "0.3",
    }


@contextmanager
def replica(cluster: Cluster, url: str, instance: str) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.scheduler", "serve"],
        env=_env(cluster, url, instance),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        stop_group(proc, timeout=10)


async def _wait_for(predicate: Callable[[], bool], within: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < within:
        if predicate():
            return time.monotonic() - started
        await asyncio.sleep(0.1)
    raise AssertionError("condition not met in time")


async def test_one_leader_among_replicas_and_failover(cluster: Cluster, scheduler_db: str) -> None:
    with replica(cluster, scheduler_db, "a") as a, replica(cluster, scheduler_db, "b") as b:
        await _wait_for(lambda: len(runs(scheduler_db, "process-tasks")) >= 3, 20)
        await asyncio.sleep(2)
        before = runs(scheduler_db)
        leaders = {instance for _, instance, _, _ in before}
        assert len(leaders) == 1, before  # only the leader ran anything
        leader = leaders.pop()
        follower = "b" if leader == "a" else "a"

        (a if leader == "a" else b).send_signal(signal.SIGKILL)
        took = await _wait_for(
            lambda: any(instance == follower for _, instance, _, _ in runs(scheduler_db)), 15
        )
        assert took < 5, f"takeover after {took:.1f}s"
        await asyncio.sleep(1.5)

    done = runs(scheduler_db, "credit-reset")
    assert len([r for r in done if r[3] == "ok"]) == 1, done  # once per period, whoever leads
    # Every run finished well, except those the killed leader was in the middle of: at most one of
    # each job (the jobs due every second run side by side, so several may be cut short at once).
    unfinished = [r for r in runs(scheduler_db) if r[3] != "ok"]
    assert all(r[1] == leader and r[3] is None for r in unfinished), unfinished
    assert len({r[0] for r in unfinished}) == len(unfinished), unfinished


async def test_catch_up_runs_a_missed_reset_once(
    cluster: Cluster, credit: CreditClient, scheduler_db: str
) -> None:
    user = await credit.open_account(FREE)
    await credit.charge(user, 10, key="all")
    backdate(cluster.settings.database_url, user)
    missed_slot = last_daily_slot(datetime.now(UTC), parse_daily_time("02:00"))
    with psycopg.connect(scheduler_db, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO scheduler.job_runs (job, instance, trigger, started_at, finished_at, outcome)"
            " VALUES ('credit-reset', 'old', 'schedule', %s, %s, 'ok')",
            (missed_slot - timedelta(days=1), missed_slot - timedelta(days=1)),
        )

    with replica(cluster, scheduler_db, "late"):
        await _wait_for(lambda: len(runs(scheduler_db, "credit-reset")) == 2, 20)
        await asyncio.sleep(1)
    assert runs(scheduler_db, "credit-reset")[-1] == ("credit-reset", "late", "catch-up", "ok")
    assert (await credit.account(user)).current_credits == 10

    with replica(cluster, scheduler_db, "again"):  # the slot is covered now: no second run
        await _wait_for(lambda: any(r[1] == "again" for r in runs(scheduler_db)), 20)
        await asyncio.sleep(1)
    assert len(runs(scheduler_db, "credit-reset")) == 2


async def test_health_follows_dependencies(cluster: Cluster, scheduler_db: str) -> None:
    settings = make_settings(scheduler_db, **_addresses(cluster))
    server = await start_server(build_spec(settings, quiet_scheduler()), settings, "127.0.0.1:0")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)

            async def status() -> int:
                return (await stub.Check(health_pb2.HealthCheckRequest(), timeout=2)).status

            assert await status() == health_pb2.HealthCheckResponse.SERVING
            async with cluster.stopped("credit"):
                await _wait_async(status, health_pb2.HealthCheckResponse.NOT_SERVING)
            await _wait_async(status, health_pb2.HealthCheckResponse.SERVING)
    finally:
        await server.stop(1)


async def _wait_async(
    probe: Callable[[], Awaitable[int]], expected: int, within: float = 15
) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await probe() == expected:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"health never became {expected}")


async def test_jobs_cli_runs_a_job_now(cluster: Cluster, scheduler_db: str) -> None:
    env = _env(cluster, scheduler_db, "ignored")
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "studiox_cli", "jobs", "run", "repair"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "repair: ok" in result.stdout
    assert runs(scheduler_db) == [("repair", "cli", "manual", "ok")]
