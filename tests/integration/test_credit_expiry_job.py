"""The scheduler's credit-expiry job at integration size: thousands of lapsed grants closed in
set-based batches by concurrent loops, while charges hit the same accounts, once."""

from __future__ import annotations

import asyncio
import uuid

import grpc

from services.kit.clients import ServiceChannels
from services.kit.db import Database
from services.kit.migrate import upgrade
from services.scheduler.jobs import JobRunner, Jobs
from tests.integration.test_credit_ledger import assert_ledger_verifies
from tests.support.cluster import Cluster, make_settings, quiet_scheduler
from tests.support.credit import CreditClient
from tests.support.credit_seed import seed_expiring

ACCOUNTS = 4000


async def test_expiry_job_closes_thousands_of_grants_once_under_load(
    cluster: Cluster, credit: CreditClient, fresh_database: str
) -> None:
    prefix = f"exp_{uuid.uuid4().hex[:8]}_"
    seeded = await asyncio.to_thread(
        seed_expiring, cluster.settings.database_url, prefix=prefix, count=ACCOUNTS
    )
    upgrade("scheduler", make_settings(fresh_database))
    settings = make_settings(
        fresh_database,
        credit_service_addr=cluster.settings.credit_service_addr,
        task_service_addr=cluster.settings.task_service_addr,
    )
    db, channels = Database(settings), ServiceChannels(settings)
    config = quiet_scheduler(reset_batch_size=500, reset_workers=2, instance="expiry")
    runner = JobRunner(db, Jobs(channels, config), config.instance)

    async def charge(i: int) -> int:
        # A lapsed promotion is never spent: each of these takes allowance only.
        try:
            reply = await credit.charge(f"{prefix}{i + 1}", 3, key=f"during-{i}")
        except grpc.aio.AioRpcError:
            return -1
        return -sum(g.amount for g in reply.entry.grants if g.category == "promotional")

    try:
        job = asyncio.create_task(runner.run("credit-expiry", trigger="manual"))
        charged = await asyncio.gather(*(charge(i) for i in range(200)))
        run = await job
        rerun = await runner.run("credit-expiry", trigger="manual")
    finally:
        await channels.close()
        await db.close()

    assert run.outcome == "ok", run.error
    assert charged == [0] * 200
    assert run.counts["grants"] >= ACCOUNTS
    assert run.counts["batches"] >= ACCOUNTS // 500
    assert rerun.counts["grants"] == 0
    like = f"{prefix}%"
    assert (
        cluster.scalar(
            "SELECT count(*) FROM credit.grants WHERE user_id LIKE %s AND category = 'promotional'"
            " AND closed_reason = 'expired' AND remaining = 0",
            like,
        )
        == ACCOUNTS
    )
    assert (
        cluster.scalar(
            "SELECT -sum(amount) FROM credit.entries WHERE user_id LIKE %s AND kind = 'expiry'",
            like,
        )
        == seeded
    )
    # Each expiry entry names the grant it closed.
    assert (
        cluster.scalar(
            "SELECT count(*) FROM credit.entries e JOIN credit.postings p ON p.entry_id = e.id "
            "JOIN credit.grants g ON g.id = p.grant_id "
            "WHERE e.user_id LIKE %s AND e.kind = 'expiry' AND g.category = 'promotional'",
            like,
        )
        == ACCOUNTS
    )
    assert (
        cluster.scalar("SELECT sum(bonus_balance) FROM credit.accounts WHERE user_id LIKE %s", like)
        == 0
    )
    await assert_ledger_verifies(credit)
