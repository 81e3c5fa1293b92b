"""Soak and chaos under wrk load (`make bench`): zero 5xx in a steady minute; a PostgreSQL
restart and a kill of every service during load, recovered without manual steps, and afterwards
every task settled and the ledger verifying. Figures go to docs/RELIABILITY.md."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import grpc
import pytest

from bench import wrk
from bench.report import BenchReport
from studiox.credit.v1 import credit_pb2, credit_pb2_grpc
from studiox.task.v1 import task_pb2, task_pb2_grpc
from tests.bench.conftest import database_url
from tests.support.cluster import INTERNAL_TOKEN
from tests.support.settlement import settlement_problems
from tests.support.stack import Stack

INTERNAL = (("x-internal-token", INTERNAL_TOKEN),)
SOAK_SECONDS = 60
CHAOS_SECONDS = 50
# How long creates cut off by the end of a load may take to finish writing (see _settle_and_verify).
SETTLE_SECONDS = 10


def _settle_and_verify(stack: Stack) -> tuple[list[str], int]:
    """Repair, then what is still wrong. wrk stops by closing its connections, so creates it
    cut off may still be writing their reservation as the first repair runs (which it then cannot
    see); repair is retried for up to SETTLE_SECONDS, and only what no repair settles is reported.
    A double charge or a lost refund never settles, so it still fails the test."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        with grpc.insecure_channel(stack.settings.task_service_addr) as channel:
            task_pb2_grpc.TaskInternalServiceStub(channel).RepairOrphans(
                task_pb2.RepairOrphansRequest(min_age_seconds=0), metadata=INTERNAL, timeout=120
            )
        problems = settlement_problems(database_url(stack))
        if not problems or time.monotonic() >= deadline:
            break
        time.sleep(1)
    with grpc.insecure_channel(stack.settings.credit_service_addr) as channel:
        report = credit_pb2_grpc.CreditInternalServiceStub(channel).VerifyLedger(
            credit_pb2.VerifyLedgerRequest(), metadata=INTERNAL, timeout=120
        )
    return problems, len(report.differences)


def _describe(load: wrk.Load) -> str:
    statuses = ", ".join(f"{code}: {n:,}" for code, n in sorted(load.statuses.items()))
    return (
        f"{load.requests:,} requests in {load.seconds:.0f} s ({load.rps:,.0f}/s) at "
        f"{load.connections} connections; p50 {load.p50_ms:.0f} ms, p99 {load.p99_ms:.0f} ms; "
        f"statuses {statuses}; socket errors {load.socket_errors}"
    )


@pytest.mark.bench
def test_soak(bench_stack: Stack, bench_users: Path, bench_report: BenchReport) -> None:
    load = wrk.run(
        "soak",
        bench_stack.base_url,
        "mixed.lua",
        connections=64,
        seconds=SOAK_SECONDS,
        tokens=bench_users,
    )
    problems, differences = _settle_and_verify(bench_stack)
    bench_report.reliability += [
        "## Soak",
        "",
        f"Mixed traffic (credits, task lists, stats, plans, creations, cancels) for {SOAK_SECONDS} s: "
        + _describe(load)
        + ".",
        f"Afterwards: repair, then VerifyLedger: {differences} differences; tasks not settled "
        f"exactly once: {len(problems)}.",
        "",
    ]
    print(_describe(load))
    assert load.server_errors == 0, load
    assert load.socket_errors == 0, load
    assert differences == 0
    assert problems == [], problems


@pytest.mark.bench
def test_chaos(bench_stack: Stack, bench_users: Path, bench_report: BenchReport) -> None:
    result: dict[str, wrk.Load] = {}
    runner = threading.Thread(
        target=lambda: result.update(
            load=wrk.run(
                "chaos",
                bench_stack.base_url,
                "mixed.lua",
                connections=64,
                seconds=CHAOS_SECONDS,
                tokens=bench_users,
            )
        )
    )
    events: list[str] = []
    runner.start()
    time.sleep(4)

    def recover(what: str, started: float) -> None:
        bench_stack.wait_healthy(90)
        events.append(f"| {what} | {time.monotonic() - started:.1f} s |")

    started = time.monotonic()
    bench_stack.stop_process("postgres", signal.SIGINT)
    time.sleep(2)
    bench_stack.start_process("postgres")
    recover("PostgreSQL fast shutdown, restarted after 2 s", started)
    for service in ("user", "credit", "task", "billing", "scheduler"):
        time.sleep(2)
        started = time.monotonic()
        # Every process of the service (SERVICE_WORKERS of them, "credit.1", "credit.2", ...).
        labels = [name for name in bench_stack.commands if name.split(".")[0] == service]
        for label in labels:
            bench_stack.kill_process(label)
        time.sleep(1)
        for label in labels:
            bench_stack.start_process(label)
        recover(f"{service} SIGKILL (all {len(labels)} processes), restarted after 1 s", started)
    runner.join(CHAOS_SECONDS + 60)
    load = result["load"]
    bench_stack.wait_healthy(60)
    problems, differences = _settle_and_verify(bench_stack)
    bench_report.reliability += [
        "## Chaos",
        "",
        f"Under {CHAOS_SECONDS} s of the same mixed load: " + _describe(load) + ".",
        "Non-2xx answers are the requests caught in each gap (503 while a dependency is down);",
        "nothing was done by hand between the events.",
        "",
        "| event | back to healthy (/health 200) after |",
        "|---|---|",
        *events,
        "",
        f"Afterwards: repair, then VerifyLedger: {differences} differences; tasks not settled "
        f"exactly once: {len(problems)}.",
        "",
    ]
    print(_describe(load), *events, sep="\n")
    assert differences == 0
    assert problems == [], problems
    assert load.statuses.get(500, 0) == 0, load
