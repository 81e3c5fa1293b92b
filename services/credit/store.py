"""Credit tables and queries (schema `credit`).

Concurrency: a charge decides and records in one statement that locks the account row; a refund
locks the account row before reading what is left of the charge; grants add relatively. The unique
(user_id, idempotency_key) constraint is the last word on retries: a lost race ends in a unique
violation that rolls the whole statement back, and the first result is returned instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from services.credit.domain import (
    Account,
    Bucket,
    Entry,
    EntryKind,
    LedgerDifference,
    PlanTerms,
    Posting,
    add_months,
    charge_refusal,
    ensure_same_request,
    refund_split,
)
from services.kit.errors import InvalidState, NotFound

ENTRY_COLUMNS = (
    "id, user_id, kind, idempotency_key, amount, allowance_delta, purchased_delta, usage, "
    "reference, description, balance_after, created_at"
)
ACCOUNT_COLUMNS = (
    "user_id, plan_name, monthly_allowance, is_unlimited, features, allowance_balance, "
    "purchased_balance, used_this_period, period_started_at, credit_reset_at"
)


def _entry(row: Row[Any]) -> Entry:
    m = row._mapping
    return Entry(
        id=m["id"],
        user_id=m["user_id"],
        kind=EntryKind(m["kind"]),
        idempotency_key=m["idempotency_key"],
        amount=m["amount"],
        allowance_delta=m["allowance_delta"],
        purchased_delta=m["purchased_delta"],
        usage=m["usage"],
        reference=m["reference"],
        description=m["description"],
        balance_after=m["balance_after"],
        created_at=m["created_at"],
    )


def _account(row: Row[Any]) -> Account:
    m = row._mapping
    return Account(
        user_id=m["user_id"],
        terms=PlanTerms(
            plan_name=m["plan_name"],
            monthly_allowance=m["monthly_allowance"],
            is_unlimited=m["is_unlimited"],
            features=tuple(m["features"]),
        ),
        allowance_balance=m["allowance_balance"],
        purchased_balance=m["purchased_balance"],
        used_this_period=m["used_this_period"],
        period_started_at=m["period_started_at"],
        credit_reset_at=m["credit_reset_at"],
    )


async def get_account(
    conn: AsyncConnection, user_id: str, *, for_update: bool = False
) -> Account | None:
    lock = " FOR UPDATE" if for_update else ""
    row = (
        await conn.execute(
            text(f"SELECT {ACCOUNT_COLUMNS} FROM credit.accounts WHERE user_id = :uid{lock}"),
            {"uid": user_id},
        )
    ).first()
    return _account(row) if row else None


async def find_entry(conn: AsyncConnection, user_id: str, key: str) -> Entry | None:
    row = (
        await conn.execute(
            text(
                f"SELECT {ENTRY_COLUMNS} FROM credit.entries "
                "WHERE user_id = :uid AND idempotency_key = :key"
            ),
            {"uid": user_id, "key": key},
        )
    ).first()
    return _entry(row) if row else None


_CHARGE = text(
    f"""
    WITH cur AS (
        SELECT user_id, allowance_balance AS a0, purchased_balance AS p0, is_unlimited
        FROM credit.accounts
        WHERE user_id = :uid
          AND (:feature = '' OR :feature = ANY (features))
          AND NOT EXISTS (
              SELECT 1 FROM credit.entries WHERE user_id = :uid AND idempotency_key = :key)
        FOR UPDATE
    ), decision AS (
        -- allowance first, then purchased; unlimited plans take nothing from either bucket
        SELECT user_id, a0, p0,
               CASE WHEN is_unlimited THEN 0 ELSE LEAST(a0, :amount) END AS take_a,
               CASE WHEN is_unlimited THEN 0 ELSE :amount - LEAST(a0, :amount) END AS take_p
        FROM cur
        WHERE is_unlimited OR a0 + p0 >= :amount
    ), upd AS (
        UPDATE credit.accounts a
        SET allowance_balance = d.a0 - d.take_a,
            purchased_balance = d.p0 - d.take_p,
            used_this_period = a.used_this_period + :amount,
            updated_at = now()
        FROM decision d
        WHERE a.user_id = d.user_id
        RETURNING a.user_id, a.allowance_balance + a.purchased_balance AS balance
    )
    INSERT INTO credit.entries (user_id, kind, idempotency_key, amount, allowance_delta,
                                purchased_delta, usage, reference, description, balance_after)
    SELECT d.user_id, 'charge', :key, -(d.take_a + d.take_p), -d.take_a, -d.take_p, :amount,
           :reference, :description, u.balance
    FROM decision d JOIN upd u USING (user_id)
    RETURNING {ENTRY_COLUMNS}
    """
)


async def charge(
    conn: AsyncConnection,
    *,
    user_id: str,
    amount: int,
    key: str,
    reference: str,
    description: str,
    feature: str,
) -> Posting:
    """Run on an autocommit connection: the statement is the transaction."""
    params = {
        "uid": user_id,
        "amount": amount,
        "key": key,
        "reference": reference,
        "description": description,
        "feature": feature,
    }
    try:
        row = (await conn.execute(_CHARGE, params)).first()
    except IntegrityError:
        row = None  # a concurrent call with the same key won; its result is returned below
    if row is not None:
        entry = _entry(row)
        return Posting(entry, entry.balance_after, applied=True)
    existing = await find_entry(conn, user_id, key)
    if existing is not None:
        ensure_same_request(existing, EntryKind.CHARGE, usage=amount)
        return Posting(existing, await _balance(conn, user_id), applied=False)
    raise charge_refusal(await get_account(conn, user_id), amount, feature)


_GRANT = text(
    f"""
    WITH upd AS (
        UPDATE credit.accounts
        SET allowance_balance = allowance_balance + :a,
            purchased_balance = purchased_balance + :p,
            updated_at = now()
        WHERE user_id = :uid
          AND NOT EXISTS (
              SELECT 1 FROM credit.entries WHERE user_id = :uid AND idempotency_key = :key)
        RETURNING user_id, allowance_balance + purchased_balance AS balance
    )
    INSERT INTO credit.entries (user_id, kind, idempotency_key, amount, allowance_delta,
                                purchased_delta, reference, description, balance_after)
    SELECT user_id, 'grant', :key, :a + :p, :a, :p, :reference, :description, balance FROM upd
    RETURNING {ENTRY_COLUMNS}
    """
)


async def grant(
    conn: AsyncConnection,
    *,
    user_id: str,
    amount: int,
    bucket: Bucket,
    key: str,
    reference: str,
    description: str,
) -> Posting:
    """Run on an autocommit connection: the statement is the transaction."""
    a, p = (amount, 0) if bucket is Bucket.ALLOWANCE else (0, amount)
    params = {
        "uid": user_id,
        "a": a,
        "p": p,
        "key": key,
        "reference": reference,
        "description": description,
    }
    try:
        row = (await conn.execute(_GRANT, params)).first()
    except IntegrityError:
        row = None
    if row is not None:
        entry = _entry(row)
        return Posting(entry, entry.balance_after, applied=True)
    existing = await find_entry(conn, user_id, key)
    if existing is not None:
        ensure_same_request(existing, EntryKind.GRANT)
        return Posting(existing, await _balance(conn, user_id), applied=False)
    raise NotFound("Credit account not found")


async def refund(
    conn: AsyncConnection,
    *,
    user_id: str,
    charge_key: str,
    amount: int,
    key: str,
    description: str,
) -> Posting:
    """Run inside a transaction. The account lock comes first, so the sum of earlier refunds read
    afterwards is current: two refunds of one charge can never both take what is left."""
    account = await get_account(conn, user_id, for_update=True)
    if account is None:
        raise NotFound("Credit account not found")
    existing = await find_entry(conn, user_id, key)
    if existing is not None:
        ensure_same_request(existing, EntryKind.REFUND)
        return Posting(existing, account.current_credits, applied=False)
    charged = await find_entry(conn, user_id, charge_key)
    if charged is None or charged.kind is not EntryKind.CHARGE:
        raise NotFound("Charge not found")
    done = (
        await conn.execute(
            text(
                "SELECT COALESCE(sum(allowance_delta), 0), COALESCE(sum(purchased_delta), 0), "
                "COALESCE(-sum(usage), 0) FROM credit.entries WHERE refund_of = :charge"
            ),
            {"charge": charged.id},
        )
    ).one()
    refunded_usage = int(done[2])
    left_usage = charged.usage - refunded_usage
    if left_usage <= 0:
        raise InvalidState("Charge already refunded")
    if account.terms.is_unlimited or charged.amount == 0:
        usage_back = left_usage if amount == 0 else min(amount, left_usage)
        back_a = back_p = 0
    else:
        back_a, back_p = refund_split(
            -charged.allowance_delta, -charged.purchased_delta, int(done[0]), int(done[1]), amount
        )
        usage_back = back_a + back_p
    row = (
        await conn.execute(
            text(
                f"""
                WITH upd AS (
                    UPDATE credit.accounts
                    SET allowance_balance = allowance_balance + :a,
                        purchased_balance = purchased_balance + :p,
                        used_this_period = GREATEST(used_this_period - :usage, 0),
                        updated_at = now()
                    WHERE user_id = :uid
                    RETURNING user_id, allowance_balance + purchased_balance AS balance
                )
                INSERT INTO credit.entries (user_id, kind, idempotency_key, amount,
                    allowance_delta, purchased_delta, usage, reference, description, refund_of,
                    balance_after)
                SELECT user_id, 'refund', :key, :a + :p, :a, :p, -:usage, :reference,
                       :description, :charge, balance
                FROM upd
                RETURNING {ENTRY_COLUMNS}
                """
            ),
            {
                "uid": user_id,
                "a": back_a,
                "p": back_p,
                "usage": usage_back,
                "key": key,
                "reference": charged.reference,
                "description": description,
                "charge": charged.id,
            },
        )
    ).one()
    entry = _entry(row)
    return Posting(entry, entry.balance_after, applied=True)


async def set_plan(
    conn: AsyncConnection,
    *,
    user_id: str,
    terms: PlanTerms,
    key: str,
    start_new_period: bool,
    period_end: datetime | None,
    now: datetime,
) -> tuple[Account, bool]:
    """Run inside a transaction. Changes the account's terms; with a new period, the unused
    allowance expires and the plan's allowance is granted, both as entries keyed by `key`."""
    params: dict[str, Any] = {
        "uid": user_id,
        "plan": terms.plan_name,
        "allowance": terms.monthly_allowance,
        "unlimited": terms.is_unlimited,
        "features": list(terms.features),
    }
    # Concurrent first calls for one user: the loser of the insert waits for the winner's commit,
    # then finds the grant below and returns the winner's result.
    created = (
        await conn.execute(
            text(
                """
                INSERT INTO credit.accounts (user_id, plan_name, monthly_allowance, is_unlimited,
                    features, allowance_balance, purchased_balance, reset_anchor,
                    period_started_at, credit_reset_at)
                VALUES (:uid, :plan, :allowance, :unlimited, :features, 0, 0, now(), now(), now())
                ON CONFLICT (user_id) DO NOTHING
                RETURNING user_id
                """
            ),
            params,
        )
    ).first() is not None
    account = await get_account(conn, user_id, for_update=True)
    assert account is not None
    if not created and await find_entry(conn, user_id, f"{key}:grant") is not None:
        return account, False
    start_new_period = start_new_period or created
    await conn.execute(
        text(
            """
            UPDATE credit.accounts SET plan_name = :plan, monthly_allowance = :allowance,
                is_unlimited = :unlimited, features = :features, updated_at = now()
            WHERE user_id = :uid
            """
        ),
        params,
    )
    if start_new_period:
        await _start_period(conn, account, terms, key, period_end or add_months(now, 1), now)
    updated = await get_account(conn, user_id)
    assert updated is not None
    return updated, True


async def _start_period(
    conn: AsyncConnection,
    account: Account,
    terms: PlanTerms,
    key: str,
    period_end: datetime,
    now: datetime,
) -> None:
    fresh = 0 if terms.is_unlimited else terms.monthly_allowance
    purchased = account.purchased_balance
    insert = text(
        """
        INSERT INTO credit.entries (user_id, kind, idempotency_key, amount, allowance_delta,
            purchased_delta, description, balance_after)
        VALUES (:uid, :kind, :key, :amount, :amount, 0, :description, :balance)
        """
    )
    if account.allowance_balance > 0:
        await conn.execute(
            insert,
            {
                "uid": account.user_id,
                "kind": "expiry",
                "key": f"{key}:expiry",
                "amount": -account.allowance_balance,
                "description": "Unused allowance expired (plan change)",
                "balance": purchased,
            },
        )
    await conn.execute(
        insert,
        {
            "uid": account.user_id,
            "kind": "grant",
            "key": f"{key}:grant",
            "amount": fresh,
            "description": f"{terms.plan_name} plan allowance",
            "balance": purchased + fresh,
        },
    )
    await conn.execute(
        text(
            """
            UPDATE credit.accounts SET allowance_balance = :fresh, used_this_period = 0,
                reset_anchor = :now, period_started_at = :now, credit_reset_at = :end
            WHERE user_id = :uid
            """
        ),
        {"uid": account.user_id, "fresh": fresh, "now": now, "end": period_end},
    )


_RESET_DUE = text(
    """
    WITH due AS (
        SELECT user_id, allowance_balance, purchased_balance, monthly_allowance, is_unlimited,
               reset_anchor,
               (date_part('year', age(:as_of, reset_anchor)) * 12
                + date_part('month', age(:as_of, reset_anchor)))::int AS m
        FROM credit.accounts
        WHERE credit_reset_at <= :as_of
        -- Index order (accounts_reset_due): each batch reads only due rows, never re-sorts them.
        ORDER BY credit_reset_at
        LIMIT :batch
        FOR UPDATE SKIP LOCKED
    ), calc AS (
        -- the period of the anchor's monthly schedule that contains as_of (catches up missed ones)
        SELECT d.*,
               CASE WHEN d.reset_anchor + make_interval(months => d.m + 1) > :as_of
                    THEN d.reset_anchor + make_interval(months => d.m)
                    ELSE d.reset_anchor + make_interval(months => d.m + 1) END AS new_start,
               CASE WHEN d.reset_anchor + make_interval(months => d.m + 1) > :as_of
                    THEN d.reset_anchor + make_interval(months => d.m + 1)
                    ELSE d.reset_anchor + make_interval(months => d.m + 2) END AS new_reset,
               CASE WHEN d.is_unlimited THEN 0 ELSE d.monthly_allowance END AS fresh
        FROM due d
    ), entries AS (
        INSERT INTO credit.entries (user_id, kind, idempotency_key, amount, allowance_delta,
                                    purchased_delta, description, balance_after)
        SELECT user_id, kind, 'reset:' || to_char(new_start, 'YYYY-MM-DD"T"HH24:MI:SS') || ':' || kind,
               amount, amount, 0, description, balance_after
        FROM (
            SELECT user_id, new_start, 1 AS ord, 'expiry' AS kind, -allowance_balance AS amount,
                   'Unused allowance expired' AS description, purchased_balance AS balance_after
            FROM calc WHERE allowance_balance > 0
            UNION ALL
            SELECT user_id, new_start, 2, 'grant', fresh, 'Monthly allowance',
                   purchased_balance + fresh
            FROM calc WHERE fresh > 0
        ) x
        ORDER BY user_id, ord
    )
    UPDATE credit.accounts a
    SET allowance_balance = c.fresh, used_this_period = 0, period_started_at = c.new_start,
        credit_reset_at = c.new_reset, updated_at = now()
    FROM calc c
    WHERE a.user_id = c.user_id
    """
)


async def reset_due(conn: AsyncConnection, *, as_of: datetime, batch_size: int) -> tuple[int, bool]:
    """One batch, in the caller's transaction; returns (accounts reset, whether more are due)."""
    # The batch touches a few thousand accounts by primary key; without this the planner prefers
    # hashing the whole accounts table for every batch, which dominates at a million accounts.
    await conn.execute(text("SET LOCAL enable_hashjoin = off"))
    await conn.execute(text("SET LOCAL enable_mergejoin = off"))
    result = await conn.execute(_RESET_DUE, {"as_of": as_of, "batch": batch_size})
    more = (
        await conn.execute(
            text("SELECT EXISTS (SELECT 1 FROM credit.accounts WHERE credit_reset_at <= :as_of)"),
            {"as_of": as_of},
        )
    ).scalar_one()
    return int(result.rowcount), bool(more)


async def verify(conn: AsyncConnection) -> tuple[int, list[LedgerDifference]]:
    checked = (await conn.execute(text("SELECT count(*) FROM credit.accounts"))).scalar_one()
    rows = await conn.execute(
        text(
            """
            SELECT a.user_id, a.allowance_balance, a.purchased_balance,
                   COALESCE(s.sum_a, 0) AS sum_a, COALESCE(s.sum_p, 0) AS sum_p
            FROM credit.accounts a
            LEFT JOIN (
                SELECT user_id, sum(allowance_delta) AS sum_a, sum(purchased_delta) AS sum_p
                FROM credit.entries GROUP BY user_id
            ) s USING (user_id)
            WHERE a.allowance_balance <> COALESCE(s.sum_a, 0)
               OR a.purchased_balance <> COALESCE(s.sum_p, 0)
               OR a.allowance_balance < 0 OR a.purchased_balance < 0
            ORDER BY a.user_id
            """
        )
    )
    differences = []
    for user_id, allowance, purchased, sum_a, sum_p in rows:
        if allowance < 0 or purchased < 0:
            differences.append(
                LedgerDifference(user_id, "negative bucket", allowance + purchased, sum_a + sum_p)
            )
        if allowance != sum_a:
            differences.append(LedgerDifference(user_id, "allowance", allowance, int(sum_a)))
        if purchased != sum_p:
            differences.append(LedgerDifference(user_id, "purchased", purchased, int(sum_p)))
    return int(checked), differences


async def list_entries(
    conn: AsyncConnection, user_id: str, *, limit: int, before_id: int | None
) -> Sequence[Entry]:
    rows = await conn.execute(
        text(
            f"""
            SELECT {ENTRY_COLUMNS} FROM credit.entries
            WHERE user_id = :uid AND (CAST(:before AS bigint) IS NULL OR id < :before)
            ORDER BY id DESC
            LIMIT :limit
            """
        ),
        {"uid": user_id, "before": before_id, "limit": limit},
    )
    return [_entry(r) for r in rows]


async def _balance(conn: AsyncConnection, user_id: str) -> int:
    value = (
        await conn.execute(
            text(
                "SELECT allowance_balance + purchased_balance FROM credit.accounts "
                "WHERE user_id = :uid"
            ),
            {"uid": user_id},
        )
    ).scalar_one()
    return int(value)
