"""Monthly resets, ledger verification and the public credit reads."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from services.credit.domain import add_months, period_containing
from services.kit.proto_time import to_timestamp
from studiox.credit.v1 import credit_pb2, credit_pb2_grpc
from tests.support.cluster import Cluster, internal_metadata
from tests.support.credit import FREE, CreditClient
from tests.support.tokens import DEFAULT_KEY, bearer


def _backdate(cluster: Cluster, user: str, anchor: datetime) -> None:
    """Pretend the account's schedule started at `anchor` and its first reset is overdue."""
    cluster.sql(
        "UPDATE credit.accounts SET reset_anchor = %s, period_started_at = %s, credit_reset_at = %s"
        " WHERE user_id = %s",
        anchor,
        anchor,
        add_months(anchor, 1),
        user,
    )


async def _reset_all(credit: CreditClient, as_of: datetime | None = None) -> int:
    total = 0
    while True:
        request = credit_pb2.ResetDueRequest(batch_size=500)
        if as_of is not None:
            request.as_of.CopyFrom(to_timestamp(as_of))
        reply = await credit.stub.ResetDue(request, metadata=internal_metadata(), timeout=60)
        total += reply.accounts_reset
        if not reply.more:
            return total


async def test_reset_expires_allowance_keeps_purchased_and_is_idempotent(
    cluster: Cluster, credit: CreditClient
) -> None:
    user = await credit.open_account(FREE, purchased=7)
    await credit.charge(user, 4, key="spend")  # allowance 6 left, purchased 7
    now = datetime.now(UTC)
    anchor = now - timedelta(days=40)
    _backdate(cluster, user, anchor)

    assert await _reset_all(credit) >= 1
    account = await credit.account(user)
    assert (account.allowance_credits, account.purchased_credits) == (10, 7)
    assert account.credits_used_this_month == 0
    got = account.credit_reset_at.ToDatetime(tzinfo=UTC)
    assert abs(got - add_months(anchor, 2)) < timedelta(milliseconds=1)

    kinds = cluster.sql(
        "SELECT kind, amount FROM credit.entries WHERE user_id = %s AND idempotency_key LIKE 'reset:%%'"
        " ORDER BY id",
        user,
    )
    assert kinds == [("expiry", -6), ("grant", 10)]

    await _reset_all(credit)  # nothing is due any more: a rerun changes nothing
    assert (await credit.account(user)).allowance_credits == 10
    rerun = cluster.sql(
        "SELECT count(*) FROM credit.entries WHERE user_id = %s AND idempotency_key LIKE 'reset:%%'",
        user,
    )
    assert rerun == [(2,)]
    report = await credit.verify()
    assert list(report.differences) == []


async def test_reset_catches_up_missed_periods(cluster: Cluster, credit: CreditClient) -> None:
    user = await credit.open_account(FREE)
    now = datetime.now(UTC)
    anchor = add_months(now, -3) - timedelta(days=2)  # three resets missed
    _backdate(cluster, user, anchor)

    await _reset_all(credit)

    account = await credit.account(user)
    got = account.credit_reset_at.ToDatetime(tzinfo=UTC)
    assert abs(got - add_months(anchor, 4)) < timedelta(milliseconds=1)
    assert got > now
    grants = cluster.sql(
        "SELECT count(*) FROM credit.entries WHERE user_id = %s AND kind = 'grant'"
        " AND idempotency_key LIKE 'reset:%%'",
        user,
    )
    assert grants == [(1,)]  # one fresh allowance, not three
    assert account.allowance_credits == 10


async def test_reset_keeps_a_31st_anchor_on_month_ends(
    cluster: Cluster, credit: CreditClient
) -> None:
    user = await credit.open_account(FREE)
    anchor = datetime(2026, 1, 31, 9, 0, tzinfo=UTC)
    _backdate(cluster, user, anchor)
    await _reset_all(credit, as_of=datetime(2026, 3, 5, tzinfo=UTC))
    account = await credit.account(user)
    assert account.credit_reset_at.ToDatetime(tzinfo=UTC) == datetime(2026, 3, 31, 9, 0, tzinfo=UTC)


async def test_sql_schedule_matches_the_domain_rule(cluster: Cluster, credit: CreditClient) -> None:
    """ResetDue's set-based month arithmetic agrees with domain.period_containing."""
    rng = random.Random(42)
    as_of = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
    cases = {}
    for _ in range(40):
        anchor = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(
            days=rng.randrange(0, 880), hours=rng.randrange(24)
        )
        if rng.random() < 0.3:  # month ends, where clamping matters
            anchor = anchor.replace(day=28) + timedelta(days=rng.choice([0, 1, 2, 3]))
        user = await credit.open_account(FREE)
        _backdate(cluster, user, anchor)
        cases[user] = anchor
    await _reset_all(credit, as_of=as_of)
    for user, anchor in cases.items():
        account = await credit.account(user)
        _, end = period_containing(anchor, as_of)
        assert account.credit_reset_at.ToDatetime(tzinfo=UTC) == end, (anchor, as_of)


async def test_a_batch_writes_in_user_order(cluster: Cluster, credit: CreditClient) -> None:
    """A batch takes its accounts by reset time and writes their rows in user order, ids drawn in
    that order: the locality that the reset's speed at a million accounts rests on
    (docs/PERFORMANCE.md). Here the reset times run against the user order."""
    opened = [await credit.open_account(FREE) for _ in range(8)]
    users = [
        row[0]
        for row in cluster.sql(
            "SELECT user_id FROM credit.accounts WHERE user_id = ANY(%s) ORDER BY user_id", opened
        )
    ]
    anchor = datetime(2026, 1, 10, tzinfo=UTC)
    for index, user in enumerate(users):  # the last user in user order is due first
        _backdate(cluster, user, anchor - timedelta(minutes=index))
    await _reset_all(credit, as_of=datetime(2026, 2, 20, tzinfo=UTC))

    def ids(statement: str) -> list[int]:
        return [row[0] for row in cluster.sql(statement, users)]

    fresh = ids(
        "SELECT id FROM credit.grants WHERE user_id = ANY(%s) AND category = 'allowance'"
        " AND closed_at IS NULL ORDER BY user_id"
    )
    expiries = ids(
        "SELECT id FROM credit.entries WHERE user_id = ANY(%s) AND kind = 'expiry'"
        " AND idempotency_key LIKE 'reset:%%' ORDER BY user_id"
    )
    grants = ids(
        "SELECT id FROM credit.entries WHERE user_id = ANY(%s) AND kind = 'grant'"
        " AND idempotency_key LIKE 'reset:%%' ORDER BY user_id"
    )
    assert len(fresh) == len(expiries) == len(grants) == len(users)
    for written in (fresh, expiries, grants):
        assert written == sorted(written)
    assert list((await credit.verify()).differences) == []


async def test_verify_reports_a_tampered_balance(cluster: Cluster, credit: CreditClient) -> None:
    user = await credit.open_account(FREE)
    cluster.sql("UPDATE credit.accounts SET purchased_balance = 99 WHERE user_id = %s", user)
    try:
        report = await credit.verify()
        problems = {(d.user_id, d.problem, d.balance, d.ledger_sum) for d in report.differences}
        assert (user, "purchased", 99, 0) in problems
    finally:
        cluster.sql("UPDATE credit.accounts SET purchased_balance = 0 WHERE user_id = %s", user)
    assert list((await credit.verify()).differences) == []


async def test_public_reads_use_the_callers_token(cluster: Cluster, credit: CreditClient) -> None:
    user = await credit.open_account(FREE, purchased=3)
    for i in range(13):
        await credit.charge(user, 1, key=f"t{i}")
    stub = credit_pb2_grpc.CreditServiceStub(cluster.channel("credit"))
    md = bearer(DEFAULT_KEY.mint(user))

    credits = (await stub.GetCredits(credit_pb2.GetCreditsRequest(), metadata=md)).credits
    assert (credits.user_id, credits.current_credits, credits.credits_used_this_month) == (
        user,
        0,
        13,
    )
    assert credits.plan_name == "free"
    assert credits.monthly_allowance == 10

    page1 = await stub.ListTransactions(credit_pb2.ListTransactionsRequest(limit=10), metadata=md)
    assert page1.count == 10
    assert page1.next_cursor
    page2 = await stub.ListTransactions(
        credit_pb2.ListTransactionsRequest(limit=10, cursor=page1.next_cursor), metadata=md
    )
    ids = [int(e.id) for e in [*page1.transactions, *page2.transactions]]
    assert ids == sorted(ids, reverse=True)
    assert len(set(ids)) == len(ids) == 15  # 13 charges + allowance grant + purchase
    assert page2.next_cursor == ""

    nxt = await stub.GetNextResetDate(credit_pb2.GetNextResetDateRequest(), metadata=md)
    assert nxt.success
    assert 28 <= nxt.days_until_reset <= 31


@pytest.mark.parametrize(
    "request_",
    [
        credit_pb2.ListTransactionsRequest(limit=-1),
        credit_pb2.ListTransactionsRequest(limit=101),
        credit_pb2.ListTransactionsRequest(cursor="not-a-cursor!"),
        credit_pb2.ListTransactionsRequest(cursor="djI6MTA"),
    ],
)
async def test_bad_pagination_is_invalid(
    cluster: Cluster, credit: CreditClient, request_: credit_pb2.ListTransactionsRequest
) -> None:
    user = await credit.open_account(FREE)
    stub = credit_pb2_grpc.CreditServiceStub(cluster.channel("credit"))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ListTransactions(request_, metadata=bearer(DEFAULT_KEY.mint(user)))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_public_reads_need_a_token(cluster: Cluster) -> None:
    stub = credit_pb2_grpc.CreditServiceStub(cluster.channel("credit"))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetCredits(credit_pb2.GetCreditsRequest())
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_uninitialized_user_has_no_credits_yet(cluster: Cluster) -> None:
    stub = credit_pb2_grpc.CreditServiceStub(cluster.channel("credit"))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetCredits(
            credit_pb2.GetCreditsRequest(), metadata=bearer(DEFAULT_KEY.mint("user_new"))
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
