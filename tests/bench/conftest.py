from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import psycopg
import pytest

from bench.report import BenchReport
from bench.speed import SpeedSampler
from devstack.stack import default_workers
from services.kit.settings import SERVICE_NAMES
from services.task.documents import encode_input, encode_output
from tests.support.dirs import server_tempdir
from tests.support.stack import Stack, adopt_orphans
from tests.support.tokens import DEFAULT_KEY

BENCH_USERS = 200
TASKS_PER_USER = 50
BENCH_INPUT = {"prompt": "bench"}
BENCH_OUTPUT = {"labels": ["bench"]}


@pytest.fixture(scope="session", autouse=True)
def _processes_end_with_the_session() -> None:
    """Every process these tests start ends with the session, orphans and SIGTERM included."""
    adopt_orphans()


@pytest.fixture(scope="session")
def bench_report() -> Iterator[BenchReport]:
    report = BenchReport()
    # How fast the machine was through the run, not only what it was (bench/speed.py).
    speed = SpeedSampler().start()
    yield report
    report.speed_ms = speed.stop()
    report.write()


@contextmanager
def running_stack(name: str, workers: int) -> Iterator[tuple[Stack, float]]:
    """The whole stack from nothing (embedded PostgreSQL in a new folder), no rate limit,
    `workers` processes per service; with its seconds from nothing to healthy."""
    with server_tempdir(name) as folder:
        stack = Stack(
            folder,
            None,
            extra_env={
                "GATEWAY_RATE_LIMIT_RPS": "0",
                "LOG_LEVEL": "INFO",
                "SERVICE_WORKERS": str(workers),
            },
        )
        try:
            seconds = stack.start()
            yield stack, seconds
        finally:
            stack.close()


def idle_memory_mib(stack: Stack) -> dict[str, tuple[float, float]]:
    """Resident and private (USS: what the process alone holds; the rest of its resident set is
    shared libraries and pages other processes map too) memory of each service process, the
    largest of a service's workers, MiB."""
    found: dict[str, tuple[float, float]] = {}
    for label, proc in stack.procs.items():
        service = label.split(".")[0]
        if service not in SERVICE_NAMES:
            continue
        info = psutil.Process(proc.pid).memory_full_info()
        rss, uss = info.rss / 2**20, info.uss / 2**20
        was = found.get(service, (0.0, 0.0))
        found[service] = (max(was[0], rss), max(was[1], uss))
    return found


@pytest.fixture(scope="session")
def bench_stack(bench_report: BenchReport) -> Iterator[Stack]:
    """The stack as `make run` starts it: a process per service per two cores (devstack.stack.default_workers)."""
    workers = default_workers()
    with running_stack("bench", workers) as (stack, seconds):
        bench_report.figures[
            f"stack cold start (initdb, migrations, 5 services x {workers} processes, Envoy)"
            " to healthy"
        ] = f"{seconds:.1f} s"
        time.sleep(2)  # past start-up's allocations and the first health probes
        memory = idle_memory_mib(stack)
        bench_report.figures["idle resident memory per service process (MiB)"] = ", ".join(
            f"{name} {rss:.0f}" for name, (rss, _) in memory.items()
        )
        bench_report.figures["idle private memory (USS) per service process (MiB)"] = ", ".join(
            f"{name} {uss:.0f}" for name, (_, uss) in memory.items()
        )
        yield stack


def database_url(stack: Stack) -> str:
    return stack.database_url or stack.settings.embedded.url()


@pytest.fixture(scope="session")
def bench_users(bench_stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return seed_users(bench_stack, tmp_path_factory.mktemp("bench") / "tokens.txt")


def tokens_of(path: Path) -> list[str]:
    return [line.split()[1] for line in path.read_text().splitlines()]


def seed_users(stack: Stack, path: Path) -> Path:
    """Users on Pro with a million purchased credits each, seeded set-based with the ledger
    entries that explain their balances, and TASKS_PER_USER finished tasks each (what a list
    page reads); returns the wrk token file at `path`."""
    users = [f"user_bench_{i:04d}" for i in range(BENCH_USERS)]
    with psycopg.connect(database_url(stack), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO users.users (id, email, credits_ready) "
            "SELECT u, u || '@bench.example', true FROM unnest(%s::text[]) u",
            (users,),
        )
        conn.execute(
            """
            INSERT INTO credit.accounts (user_id, plan_name, monthly_allowance, is_unlimited,
                features, allowance_balance, purchased_balance, reset_anchor, period_started_at,
                credit_reset_at)
            SELECT u, 'pro', 100, false,
                   ARRAY['image_analysis','video_generation','advanced_editing'], 100, 1000000,
                   now(), now(), now() + interval '1 month'
            FROM unnest(%s::text[]) u
            """,
            (users,),
        )
        # Charges spend grants: an open allowance grant and a purchased one per user, each with
        # the grant entry and posting that explain it (the ledger verifies).
        conn.execute(
            """
            INSERT INTO credit.grants (user_id, category, amount, remaining, priority,
                effective_at, source_key)
            SELECT u, c.category, c.amount, c.amount, c.priority, now(), c.key
            FROM unnest(%s::text[]) u,
                 (VALUES ('allowance', 100, 20, 'bench-seed:allowance'),
                         ('purchased', 1000000, 40, 'bench-seed:purchased'))
                     AS c (category, amount, priority, key)
            """,
            (users,),
        )
        conn.execute(
            """
            INSERT INTO credit.entries (user_id, kind, idempotency_key, amount, allowance_delta,
                purchased_delta, description, balance_after)
            SELECT g.user_id, 'grant', g.source_key, g.amount,
                   CASE WHEN g.category = 'allowance' THEN g.amount ELSE 0 END,
                   CASE WHEN g.category = 'purchased' THEN g.amount ELSE 0 END, 'bench seed',
                   CASE WHEN g.category = 'allowance' THEN 100 ELSE 1000100 END
            FROM credit.grants g WHERE g.user_id = ANY(%s::text[])
            """,
            (users,),
        )
        conn.execute(
            """
            INSERT INTO credit.postings (entry_id, grant_id, delta)
            SELECT e.id, g.id, g.amount
            FROM credit.grants g
            JOIN credit.entries e ON e.user_id = g.user_id AND e.idempotency_key = g.source_key
            WHERE g.user_id = ANY(%s::text[])
            """,
            (users,),
        )
        # Finished tasks for the list reads, each with the charge that paid for it (one credit
        # from the purchased grant, as a create would have taken it), so the ledger still
        # verifies and every task is settled exactly once (tests/bench/test_reliability.py).
        conn.execute(
            """
            WITH t AS (
                INSERT INTO tasks.tasks (id, user_id, type, status, input_data, output_data,
                    input_pb, output_pb, credits_cost, charge_state, completed_at, settled_at)
                SELECT gen_random_uuid(), u, 'image_analysis', 'done', %(input)s::jsonb,
                       %(output)s::jsonb, %(input_pb)s, %(output_pb)s, 1, 'charged', now(), now()
                FROM unnest(%(users)s::text[]) u, generate_series(1, %(n)s)
                RETURNING id, user_id
            ), e AS (
                INSERT INTO credit.entries (user_id, kind, idempotency_key, amount,
                    allowance_delta, purchased_delta, usage, reference, description,
                    balance_after)
                SELECT user_id, 'charge', 'task:' || id, -1, 0, -1, 1, id::text,
                       'image_analysis task',
                       1000100 - row_number() OVER (PARTITION BY user_id ORDER BY id)
                FROM t
                RETURNING id, user_id
            )
            INSERT INTO credit.postings (entry_id, grant_id, delta)
            SELECT e.id, g.id, -1
            FROM e JOIN credit.grants g ON g.user_id = e.user_id AND g.category = 'purchased'
            """,
            {
                "users": users,
                "n": TASKS_PER_USER,
                # Encoded as the store writes every task it creates and completes.
                "input": json.dumps(BENCH_INPUT),
                "output": json.dumps(BENCH_OUTPUT),
                "input_pb": encode_input(BENCH_INPUT),
                "output_pb": encode_output(BENCH_OUTPUT),
            },
        )
        conn.execute(
            "UPDATE credit.grants SET remaining = remaining - %(n)s "
            "WHERE category = 'purchased' AND user_id = ANY(%(users)s::text[])",
            {"users": users, "n": TASKS_PER_USER},
        )
        conn.execute(
            "UPDATE credit.accounts SET purchased_balance = purchased_balance - %(n)s "
            "WHERE user_id = ANY(%(users)s::text[])",
            {"users": users, "n": TASKS_PER_USER},
        )
    path.write_text("".join(f"{u} {DEFAULT_KEY.mint(u, lifetime=3600)}\n" for u in users))
    os.chmod(path, 0o644)
    return path
