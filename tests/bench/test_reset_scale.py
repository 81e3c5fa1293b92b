"""ResetDue over 1,000,000 due accounts, and ExpireDue over 1,000,000 expired grants (run by
`make bench`, not the default suite)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import psycopg
import pytest

from bench.report import BenchReport
from services.credit.client import Batch, drain
from services.credit.wiring import build_spec
from services.kit.migrate import upgrade
from services.kit.server import start_server
from services.scheduler.jobs import MAX_RESET_BATCHES
from studiox.credit.v1 import credit_pb2, credit_pb2_grpc
from tests.support.cluster import internal_metadata, make_settings
from tests.support.credit_seed import seed_expiring
from tests.support.database import drop_database, new_database

ACCOUNTS = 1_000_000
BATCH = 10_000
WORKERS = 2


def _seed(url: str) -> None:
    """Due accounts generated set-based, each with the grant entry that explains its balance and
    the grants that hold it (so the ledger verifies before and after)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            """
            INSERT INTO credit.accounts (user_id, plan_name, monthly_allowance, is_unlimited,
                features, allowance_balance, purchased_balance, reset_anchor, period_started_at,
                credit_reset_at)
            SELECT 'bench_' || g, 'free', 10, false, ARRAY['image_analysis','video_generation'],
                   g %% 11, (g %% 3) * 5, now() - interval '40 days', now() - interval '40 days',
                   now() - interval '10 days' + (g %% 1000) * interval '1 second'
            FROM generate_series(1, %s) g
            """,
            (ACCOUNTS,),
        )
        conn.execute(
            """
            INSERT INTO credit.entries (user_id, kind, idempotency_key, amount, allowance_delta,
                purchased_delta, description, balance_after)
            SELECT user_id, 'grant', 'seed', allowance_balance + purchased_balance,
                   allowance_balance, purchased_balance, 'seed', allowance_balance + purchased_balance
            FROM credit.accounts
            """
        )
        # As the migration converts buckets: what each grant holds is carried over.
        conn.execute(
            """
            INSERT INTO credit.grants (user_id, category, amount, remaining, carried, priority,
                effective_at, source_key)
            SELECT user_id, 'allowance', allowance_balance, allowance_balance, allowance_balance,
                   20, period_started_at, 'seed:allowance'
            FROM credit.accounts WHERE allowance_balance > 0
            UNION ALL
            SELECT user_id, 'purchased', purchased_balance, purchased_balance, purchased_balance,
                   40, period_started_at, 'seed'
            FROM credit.accounts WHERE purchased_balance > 0
            """
        )
        for table in ("accounts", "entries", "grants"):
            conn.execute(f"VACUUM ANALYZE credit.{table}")


@pytest.mark.bench
async def test_reset_due_one_million_accounts(pg_server: str, bench_report: BenchReport) -> None:
    url = new_database(pg_server, "studiox_bench")
    settings = make_settings(url)
    try:
        upgrade("credit", settings)
        seeded = time.perf_counter()
        _seed(url)
        seed_seconds = time.perf_counter() - seeded
        server = await start_server(build_spec(settings), settings, "127.0.0.1:0")
        try:
            import grpc

            async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
                stub = credit_pb2_grpc.CreditInternalServiceStub(channel)
                as_of = datetime.now(UTC)
                started = time.perf_counter()

                async def step() -> Batch:
                    request = credit_pb2.ResetDueRequest(batch_size=BATCH)
                    request.as_of.FromDatetime(as_of)
                    reply = await stub.ResetDue(request, metadata=internal_metadata(), timeout=600)
                    return Batch(accounts=reply.accounts_reset, grants=0, more=reply.more)

                # The scheduler's way: WORKERS loops of batches, disjoint by SKIP LOCKED.
                run = await drain(step, loops=WORKERS, max_batches=MAX_RESET_BATCHES)
                total, batches = run.accounts, run.batches
                reset_seconds = time.perf_counter() - started
                verified = time.perf_counter()
                report = await stub.VerifyLedger(
                    credit_pb2.VerifyLedgerRequest(), metadata=internal_metadata(), timeout=600
                )
                verify_seconds = time.perf_counter() - verified
        finally:
            await server.stop(1)
        print(
            f"\nResetDue: {total} accounts in {batches} batches of {BATCH} ({WORKERS} loops): "
            f"{reset_seconds:.1f}s "
            f"({total / reset_seconds:,.0f} accounts/s); seeding {seed_seconds:.1f}s; "
            f"VerifyLedger over {report.accounts_checked} accounts: {verify_seconds:.1f}s"
        )
        bench_report.figures[
            f"ResetDue over 1,000,000 due accounts ({WORKERS} loops of 10,000-account batches)"
        ] = (
            f"{reset_seconds:.1f} s ({total / reset_seconds:,.0f} accounts/s); VerifyLedger over "
            f"them {verify_seconds:.1f} s"
        )
        assert total == ACCOUNTS
        assert list(report.differences) == []
        with psycopg.connect(url) as conn:
            due = conn.execute(
                "SELECT count(*) FROM credit.accounts WHERE credit_reset_at <= %s", (as_of,)
            ).fetchone()
        assert due == (0,)
    finally:
        drop_database(url)


@pytest.mark.bench
async def test_expire_due_one_million_grants(pg_server: str, bench_report: BenchReport) -> None:
    """The scheduler's expiry job over 1,000,000 expired promotional grants (one per account, each
    account also holding an allowance that stays), in the reset's way and time budget."""
    url = new_database(pg_server, "studiox_bench_expiry")
    settings = make_settings(url)
    try:
        upgrade("credit", settings)
        seeded = time.perf_counter()
        credits = seed_expiring(url, prefix="bench_", count=ACCOUNTS)
        with psycopg.connect(url, autocommit=True) as conn:
            for table in ("accounts", "entries", "grants", "postings"):
                conn.execute(f"VACUUM ANALYZE credit.{table}")
        seed_seconds = time.perf_counter() - seeded
        server = await start_server(build_spec(settings), settings, "127.0.0.1:0")
        try:
            import grpc

            async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
                stub = credit_pb2_grpc.CreditInternalServiceStub(channel)
                as_of = datetime.now(UTC)
                started = time.perf_counter()

                async def step() -> Batch:
                    request = credit_pb2.ExpireDueRequest(batch_size=BATCH)
                    request.as_of.FromDatetime(as_of)
                    reply = await stub.ExpireDue(request, metadata=internal_metadata(), timeout=600)
                    return Batch(
                        accounts=reply.accounts, grants=reply.grants_expired, more=reply.more
                    )

                run = await drain(step, loops=WORKERS, max_batches=MAX_RESET_BATCHES)
                total, batches = run.grants, run.batches
                expiry_seconds = time.perf_counter() - started
                verified = time.perf_counter()
                report = await stub.VerifyLedger(
                    credit_pb2.VerifyLedgerRequest(), metadata=internal_metadata(), timeout=900
                )
                verify_seconds = time.perf_counter() - verified
        finally:
            await server.stop(1)
        print(
            f"\nExpireDue: {total} grants in {batches} batches of {BATCH} ({WORKERS} loops): "
            f"{expiry_seconds:.1f}s ({total / expiry_seconds:,.0f} grants/s); seeding "
            f"{seed_seconds:.1f}s; VerifyLedger: {verify_seconds:.1f}s"
        )
        bench_report.figures[
            f"ExpireDue over 1,000,000 expired grants ({WORKERS} loops of 10,000-grant batches)"
        ] = (
            f"{expiry_seconds:.1f} s ({total / expiry_seconds:,.0f} grants/s); VerifyLedger over "
            f"them {verify_seconds:.1f} s"
        )
        assert total == ACCOUNTS
        assert list(report.differences) == []
        with psycopg.connect(url) as conn:
            left = conn.execute(
                "SELECT count(*), sum(bonus_balance) FROM credit.accounts"
            ).fetchone()
            expired = conn.execute(
                "SELECT -sum(amount) FROM credit.entries WHERE kind = 'expiry'"
            ).fetchone()
        assert left == (ACCOUNTS, 0)
        assert expired == (credits,)
    finally:
        drop_database(url)
