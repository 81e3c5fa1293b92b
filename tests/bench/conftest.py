from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from bench.report import BenchReport
from tests.support.dirs import server_tempdir
from tests.support.stack import Stack, adopt_orphans
from tests.support.tokens import DEFAULT_KEY

BENCH_USERS = 200


@pytest.fixture(scope="session", autouse=True)
def _processes_end_with_the_session() -> None:
    """Every process these tests start ends with the session, orphans and SIGTERM included."""
    adopt_orphans()


@pytest.fixture(scope="session")
def bench_report() -> Iterator[BenchReport]:
    report = BenchReport()
    yield report
    report.write()


@pytest.fixture(scope="session")
def bench_stack(bench_report: BenchReport) -> Iterator[Stack]:
    """The whole stack from nothing (embedded PostgreSQL in a new folder), no rate limit."""
    with server_tempdir("bench") as folder:
        stack = Stack(folder, None, extra_env={"GATEWAY_RATE_LIMIT_RPS": "0", "LOG_LEVEL": "INFO"})
        try:
            seconds = stack.start()
            bench_report.figures[
                "stack cold start (initdb, migrations, 5 services, Envoy) to healthy"
            ] = f"{seconds:.1f} s"
            yield stack
        finally:
            stack.close()


def database_url(stack: Stack) -> str:
    return stack.database_url or stack.settings.embedded.url()


@pytest.fixture(scope="session")
def bench_users(bench_stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Users on Pro with a million purchased credits each, seeded set-based with the ledger
    entries that explain their balances; returns the wrk token file."""
    users = [f"user_bench_{i:04d}" for i in range(BENCH_USERS)]
    with psycopg.connect(database_url(bench_stack), autocommit=True) as conn:
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
        conn.execute(
            """
            INSERT INTO credit.entries (user_id, kind, idempotency_key, amount, allowance_delta,
                purchased_delta, description, balance_after)
            SELECT u, 'grant', 'bench-seed', 1000100, 100, 1000000, 'bench seed', 1000100
            FROM unnest(%s::text[]) u
            """,
            (users,),
        )
    path = tmp_path_factory.mktemp("bench") / "tokens.txt"
    path.write_text("".join(f"{u} {DEFAULT_KEY.mint(u, lifetime=3600)}\n" for u in users))
    os.chmod(path, 0o644)
    return path
