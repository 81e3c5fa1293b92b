"""Migration 0002 on data of the bucket ledger (0001): every balance stays as it was, grants
explain it, the ledger verifies, and the old charges and purchases still refund and claw back."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import psycopg
import pytest

from services.credit.wiring import build_spec
from services.kit.migrate import upgrade
from services.kit.server import start_server
from tests.support.cluster import make_settings
from tests.support.credit import CreditClient

SEED = """
INSERT INTO credit.accounts (user_id, plan_name, monthly_allowance, is_unlimited, features,
    allowance_balance, purchased_balance, used_this_period, reset_anchor, period_started_at,
    credit_reset_at)
VALUES
    ('u_mixed', 'free', 10, false, ARRAY['image_analysis'], 6, 29, 16,
     now() - interval '5 days', now() - interval '5 days', now() + interval '25 days'),
    ('u_empty', 'free', 10, false, ARRAY['image_analysis'], 0, 0, 10,
     now() - interval '5 days', now() - interval '5 days', now() + interval '25 days'),
    ('u_unlimited', 'enterprise', 0, true, ARRAY['image_analysis'], 0, 5, 3,
     now() - interval '5 days', now() - interval '5 days', now() + interval '25 days');
INSERT INTO credit.entries (user_id, kind, idempotency_key, amount, allowance_delta,
    purchased_delta, usage, reference, balance_after, refund_of)
VALUES
    ('u_mixed', 'grant', 'signup:u_mixed:grant', 10, 10, 0, 0, '', 10, NULL),
    ('u_mixed', 'grant', 'stripe:pi:pi_old', 10, 0, 10, 0, 'pi_old', 20, NULL),
    ('u_mixed', 'grant', 'stripe:checkout:cs_new', 50, 0, 50, 0, 'cs_new', 70, NULL),
    ('u_mixed', 'charge', 'task:a', -30, -4, -26, 30, 'a', 40, NULL),
    ('u_mixed', 'charge', 'task:b', -5, 0, -5, 5, 'b', 35, NULL),
    ('u_empty', 'grant', 'signup:u_empty:grant', 10, 10, 0, 0, '', 10, NULL),
    ('u_empty', 'charge', 'task:c', -10, -10, 0, 10, 'c', 0, NULL),
    ('u_unlimited', 'grant', 'stripe:pi:pi_u', 5, 0, 5, 0, 'pi_u', 5, NULL),
    ('u_unlimited', 'charge', 'task:d', 0, 0, 0, 3, 'd', 5, NULL);
-- a partial refund of task:a before the migration (2 purchased credits back)
INSERT INTO credit.entries (user_id, kind, idempotency_key, amount, allowance_delta,
    purchased_delta, usage, reference, balance_after, refund_of)
SELECT 'u_mixed', 'refund', 'refund:a:1', 2, 0, 2, -2, 'a', 37, id
FROM credit.entries WHERE idempotency_key = 'task:a';
INSERT INTO credit.entries (user_id, kind, idempotency_key, amount, allowance_delta,
    purchased_delta, usage, reference, balance_after)
VALUES ('u_mixed', 'charge', 'task:e', -2, 0, -2, 2, 'e', 35);
"""


@pytest.fixture
async def old_ledger(fresh_database: str) -> AsyncIterator[CreditClient]:
    settings = make_settings(fresh_database)
    upgrade("credit", settings, revision="0001")
    with psycopg.connect(fresh_database, autocommit=True) as conn:
        conn.execute(SEED)
    upgrade("credit", settings)
    server = await start_server(build_spec(settings), settings, "127.0.0.1:0")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            yield CreditClient(channel)
    finally:
        await server.stop(1)


def _rows(url: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


async def test_existing_accounts_keep_every_balance_and_verify(
    old_ledger: CreditClient, fresh_database: str
) -> None:
    balances = _rows(
        fresh_database,
        "SELECT user_id, allowance_balance, purchased_balance, bonus_balance, owed "
        "FROM credit.accounts ORDER BY user_id",
    )
    assert balances == [
        ("u_empty", 0, 0, 0, 0),
        ("u_mixed", 6, 29, 0, 0),
        ("u_unlimited", 0, 5, 0, 0),
    ]
    grants = _rows(
        fresh_database,
        "SELECT user_id, category, source_key, amount, remaining FROM credit.grants "
        "ORDER BY user_id, category, amount",
    )
    # The newest purchase keeps the credits; the oldest was spent first.
    assert grants == [
        ("u_mixed", "allowance", "migrated:allowance", 6, 6),
        ("u_mixed", "purchased", "stripe:pi:pi_old", 10, 0),
        ("u_mixed", "purchased", "stripe:checkout:cs_new", 50, 29),
        ("u_unlimited", "purchased", "stripe:pi:pi_u", 5, 5),
    ]
    report = await old_ledger.verify()
    assert (report.accounts_checked, list(report.differences)) == (3, [])
    mixed = await old_ledger.account("u_mixed")
    assert (mixed.current_credits, mixed.allowance_credits, mixed.purchased_credits) == (35, 6, 29)


async def test_old_charges_refund_and_old_purchases_claw_back(
    old_ledger: CreditClient, fresh_database: str
) -> None:
    # task:a took 4 allowance + 26 purchased, 2 purchased came back: 24 purchased + 4 allowance left.
    refund = await old_ledger.refund("u_mixed", "task:a", key="refund:a:2")
    assert (refund.entry.allowance_delta, refund.entry.purchased_delta) == (4, 24)
    assert refund.remaining_credits == 35 + 28
    # The checkout of 50 is refunded in full at Stripe: its grant gives back what it holds.
    claw = await old_ledger.clawback("u_mixed", "stripe:checkout:cs_new", 50)
    assert claw.applied
    unlimited = await old_ledger.refund("u_unlimited", "task:d", key="refund:d")
    assert unlimited.entry.usage == -3
    report = await old_ledger.verify()
    assert list(report.differences) == []
    assert (await old_ledger.account("u_mixed")).owed_credits == 0


async def test_new_charges_spend_the_converted_grants(old_ledger: CreditClient) -> None:
    reply = await old_ledger.charge("u_mixed", 8, key="task:new")
    assert (reply.entry.allowance_delta, reply.entry.purchased_delta) == (-6, -2)
    assert reply.remaining_credits == 27
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await old_ledger.charge("u_empty", 1, key="task:none")
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert list((await old_ledger.verify()).differences) == []
