"""Balance crossings against the real PostgreSQL: the trigger on credit.accounts (migration 0004)
applies services.credit.alert_rules.crossings exactly; concurrent charges cross a threshold once;
the outbox delivers with backoff, dies after its attempts and is retried (services.kit.outbox)."""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest

from devstack.webhook_receiver import WebhookReceiver
from services.credit.alert_rules import Watch, crossings
from services.kit import outbox
from services.kit.db import Database
from services.kit.migrate import upgrade
from services.kit.settings import DEV_WEBHOOK_SIGNING_SECRET
from studiox.credit.v1 import alerts_pb2, alerts_pb2_grpc, credit_pb2
from tests.support.cluster import Cluster, internal_metadata, make_settings
from tests.support.credit import CreditClient

# (before, after, low threshold or None for the plan's, top-up threshold, allowance, unlimited)
CASES = [
    (before, after, low, topup, allowance, unlimited)
    for before, after in [(50, 49), (10, 9), (10, 10), (9, 3), (5, 0), (0, 0), (1, 0), (30, 5)]
    for low, topup, allowance, unlimited in [
        (None, None, 100, False),
        (10, None, 0, False),
        (0, 10, 10, False),
        (None, 20, 300, False),
        (None, 30, 100, True),
    ]
]


async def test_the_trigger_applies_the_python_crossing_rule(fresh_database: str) -> None:
    upgrade("credit", make_settings(fresh_database))
    with psycopg.connect(fresh_database, autocommit=True) as conn:
        for i, (before, after, low, topup, allowance, unlimited) in enumerate(CASES):
            user = f"rule_{i}"
            conn.execute(
                "INSERT INTO credit.accounts (user_id, plan_name, monthly_allowance, is_unlimited,"
                " features, allowance_balance, purchased_balance, reset_anchor,"
                " period_started_at, credit_reset_at)"
                " VALUES (%s, 'p', %s, %s, '{}', 0, %s, now(), now(), now())",
                (user, allowance, unlimited, before),
            )
            conn.execute(
                "INSERT INTO credit.balance_watch (user_id, low_threshold, topup_threshold)"
                " VALUES (%s, %s, %s)",
                (user, low, topup),
            )
            # Spread over two columns: the rule reads the whole balance.
            conn.execute(
                "UPDATE credit.accounts SET purchased_balance = %s - %s, bonus_balance = %s"
                " WHERE user_id = %s",
                (after, after // 2, after // 2, user),
            )
            got = [
                Watch(kind)
                for (kind,) in conn.execute(
                    "SELECT kind FROM credit.alerts WHERE user_id = %s ORDER BY id", (user,)
                )
            ]
            events = conn.execute(
                "SELECT count(*) FROM credit.outbox WHERE user_id = %s", (user,)
            ).fetchone()
            topups = conn.execute(
                "SELECT count(*) FROM credit.topup_requests WHERE user_id = %s", (user,)
            ).fetchone()
            assert events is not None
            assert topups is not None
            if topups[0]:
                got.append(Watch.TOPUP)
            expected = crossings(
                before,
                after,
                low=low,
                topup=topup,
                monthly_allowance=allowance,
                unlimited=unlimited,
            )
            assert got == expected, (before, after, low, topup, allowance, unlimited)
            assert events[0] == len([w for w in expected if w is not Watch.TOPUP])


async def test_concurrent_charges_cross_the_threshold_once(
    cluster: Cluster, credit: CreditClient
) -> None:
    user = await credit.open_account(purchased=100)  # 10 allowance + 100 purchased
    alerts = alerts_pb2_grpc.AlertInternalServiceStub(cluster.channel("credit"))
    await alerts.SetTopUpThreshold(
        alerts_pb2.SetTopUpThresholdRequest(user_id=user, threshold=50),
        metadata=internal_metadata(),
    )
    replies = await asyncio.gather(
        *(credit.charge(user, 3, f"c{i}") for i in range(30)), return_exceptions=True
    )
    assert all(isinstance(r, credit_pb2.ChargeResponse) for r in replies), replies
    assert (
        cluster.scalar("SELECT count(*) FROM credit.topup_requests WHERE user_id = %s", user) == 1
    )
    # Down to zero in one more charge: low (the plan's threshold, 1) and depleted, once each.
    await credit.charge(user, 20, "last")
    kinds = cluster.sql("SELECT type FROM credit.outbox WHERE user_id = %s ORDER BY id", user)
    assert [k for (k,) in kinds] == ["credits.low", "credits.depleted"]
    # Back above and down again: a new crossing, a new top-up request.
    await credit.grant(user, 60, credit_pb2.BUCKET_PURCHASED, key="refill")
    await credit.charge(user, 15, "again")
    assert (
        cluster.scalar("SELECT count(*) FROM credit.topup_requests WHERE user_id = %s", user) == 2
    )
    pending = await alerts.PendingTopUps(
        alerts_pb2.PendingTopUpsRequest(limit=500), metadata=internal_metadata()
    )
    assert [c.user_id for c in pending.crossings].count(user) == 2

    # The operator's view: `studiox webhooks list|retry` on the same database.
    env = {**os.environ, "DATABASE_URL": cluster.settings.database_url}
    listed = await asyncio.to_thread(_cli, env, "webhooks", "list", "--user", user)
    assert listed.returncode == 0, listed.stderr
    rows = listed.stdout.splitlines()
    assert [row.split()[4] for row in rows] == ["credits.depleted", "credits.low"]
    assert all("attempts=0 pending" in row for row in rows)
    retried = await asyncio.to_thread(_cli, env, "webhooks", "retry", rows[0].split()[2])
    assert retried.stdout.strip() == "1 event(s) due for delivery now", retried.stderr


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "studiox_cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_a_grant_about_to_expire_is_warned_about_once(
    cluster: Cluster, credit: CreditClient
) -> None:
    user = await credit.open_account()
    soon = datetime.now(UTC) + timedelta(minutes=30)
    await credit.give(user, 7, "promotional", f"promo:{user}", expires_at=soon)
    alerts = alerts_pb2_grpc.AlertInternalServiceStub(cluster.channel("credit"))
    request = alerts_pb2.WarnExpiringRequest(within_hours=1, limit=1000)
    for _ in range(2):
        await alerts.WarnExpiring(request, metadata=internal_metadata())
    rows = cluster.sql(
        "SELECT kind, message FROM credit.alerts WHERE user_id = %s AND kind = 'grant.expiring'",
        user,
    )
    assert len(rows) == 1
    assert rows[0][1].startswith("7 credits expire on ")
    events = cluster.sql("SELECT data FROM credit.outbox WHERE user_id = %s", user)
    assert [e["credits"] for (e,) in events] == [7]


@pytest.fixture
async def outbox_db(fresh_database: str) -> Database:
    settings = make_settings(fresh_database)
    upgrade("credit", settings)
    return Database(settings, pool_size=2)


async def test_outbox_backs_off_dies_and_is_retried(outbox_db: Database) -> None:
    receiver = WebhookReceiver(DEV_WEBHOOK_SIGNING_SECRET)
    policy = outbox.DeliveryPolicy(
        endpoints=(receiver.url,),
        secret=DEV_WEBHOOK_SIGNING_SECRET,
        backoff_base_seconds=0.2,
        max_attempts=3,
    )
    dispatcher = outbox.Dispatcher(outbox_db, "credit", policy)
    async with outbox_db.transaction() as conn:
        event_id = await outbox.enqueue(conn, "credit", "credits.low", "u1", {"balance": 3})
    assert [round(outbox.backoff(n, 5, 3600).total_seconds()) for n in (1, 2, 3, 12, 20)] == [
        5,
        10,
        20,
        3600,
        3600,
    ]

    async def row() -> outbox.OutboxEvent:
        async with outbox_db.autocommit() as conn:
            return (await outbox.list_events(conn, "credit", state=None, user_id="u1", limit=1))[0]

    with receiver.running():
        async with httpx.AsyncClient() as client:
            receiver.available = False
            for attempt in itertools.count(1):
                started = datetime.now(UTC)
                assert await dispatcher.deliver_once(client) == 1
                event = await row()
                assert event.attempts == attempt
                assert "HTTP 503" in event.last_error
                if attempt == 3:
                    break
                # Not due again before its backoff: 0.2 s, then 0.4 s.
                assert event.next_attempt_at >= started + timedelta(
                    seconds=0.2 * 2 ** (attempt - 1)
                )
                assert await dispatcher.deliver_once(client) == 0
                await asyncio.sleep(0.2 * 2 ** (attempt - 1) + 0.05)
            assert (await row()).state == "dead"
            assert await dispatcher.deliver_once(client) == 0

            receiver.available = True
            async with outbox_db.autocommit() as conn:
                assert await outbox.retry(conn, "credit", [event_id], dead=False) == 1
            assert await dispatcher.deliver_once(client) == 1
            assert (await row()).state == "delivered"
            assert await dispatcher.deliver_once(client) == 0
    # Delivered once, verified with the Standard Webhooks library, under its event id.
    assert [e["id"] for e in receiver.events] == [event_id]
    assert receiver.events[0]["data"] == {"balance": 3}
    assert receiver.attempts == 4
    await outbox_db.close()
