"""Credit statements on accounts (schema `credit`): an account, its balances and the credits read,
the charge (one statement), and an account's plan terms and period. Grants: grant_store.py; entries
and their postings: entry_store.py; the set-based batches: batch_store.py; reservations:
reservation_store.py; how rows read: rows.py.

Concurrency: every writer of an account's grants holds the account row lock first (a charge locks
it in its one statement; other operations lock it at the start of their transaction; the reset
and expiry batches take it with SKIP LOCKED). Grant rows are therefore never contended between
writers, and lock order is always account, then grants. The unique (user_id, idempotency_key)
constraint is the last word on retries: a lost race ends in a unique violation that rolls the whole
statement back, and the first result is returned instead.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg import AsyncConnection as LeanConnection
from psycopg import IntegrityError as LeanIntegrityError
from psycopg.rows import dict_row

from services.credit.domain import Account, Category, Entry, Grant, GrantDelta, PlanTerms
from services.credit.rows import (
    ACCOUNT_COLUMNS,
    ENTRY_COLUMNS,
    GRANT_COLUMNS,
    to_account,
    to_entry,
    to_grant,
)
from services.kit.sql import Connection, text

# --- reads ---


async def get_account(
    conn: Connection, user_id: str, *, for_update: bool = False
) -> Account | None:
    lock = " FOR UPDATE" if for_update else ""
    row = (
        await conn.execute(
            text(f"SELECT {ACCOUNT_COLUMNS} FROM credit.accounts WHERE user_id = :uid{lock}"),
            {"uid": user_id},
        )
    ).first()
    return to_account(row) if row else None


# What an owner's credits read needs, in one statement on the lean path (one snapshot, one round
# trip): the account, what its open reservations hold, and its open grants in spending order, one
# row per grant (one row with NULL grant columns when it has none).
_CREDITS_VIEW = f"""
    SELECT {", ".join("a." + c for c in ACCOUNT_COLUMNS.split(", "))}, h.held,
           {", ".join("g." + c for c in GRANT_COLUMNS.split(", "))}
    FROM credit.accounts a
    CROSS JOIN LATERAL (
        SELECT COALESCE(sum(r.held), 0)::bigint AS held FROM credit.reservations r
        WHERE r.user_id = a.user_id AND r.state = 'open'
    ) h
    LEFT JOIN LATERAL (
        SELECT * FROM credit.grants g
        WHERE g.user_id = a.user_id AND g.closed_at IS NULL
        ORDER BY g.priority, g.expires_at NULLS LAST, g.effective_at, g.id
    ) g ON true
    WHERE a.user_id = %(uid)s
"""
_ACCOUNT_NAMES = ACCOUNT_COLUMNS.split(", ")
_GRANT_NAMES = GRANT_COLUMNS.split(", ")


async def credits_view(
    conn: LeanConnection[Any], user_id: str
) -> tuple[Account, list[Grant], int] | None:
    """The account, its open grants (spending order) and the credits its open reservations hold;
    None when there is no account."""
    cursor = await conn.execute(_CREDITS_VIEW, {"uid": user_id})
    rows = await cursor.fetchall()
    if not rows:
        return None
    accounts = len(_ACCOUNT_NAMES)
    account = to_account(dict(zip(_ACCOUNT_NAMES, rows[0][:accounts], strict=True)))
    grants = [
        to_grant(dict(zip(_GRANT_NAMES, row[accounts + 1 :], strict=True)))
        for row in rows
        if row[accounts + 1] is not None
    ]
    return account, grants, int(rows[0][accounts])


async def live_balance(conn: Connection, user_id: str) -> int:
    """Credits a charge could spend now (open, in effect, not lapsed)."""
    value = (
        await conn.execute(
            text(
                "SELECT COALESCE(sum(remaining), 0) FROM credit.grants WHERE user_id = :uid "
                "AND closed_at IS NULL AND effective_at <= now() "
                "AND (expires_at IS NULL OR expires_at > now())"
            ),
            {"uid": user_id},
        )
    ).scalar_one()
    return int(value)


async def balance(conn: Connection, user_id: str) -> int:
    """The account's balance columns' sum (what its open grants hold, lapsed or not)."""
    value = (
        await conn.execute(
            text(
                "SELECT allowance_balance + purchased_balance + bonus_balance FROM credit.accounts "
                "WHERE user_id = :uid"
            ),
            {"uid": user_id},
        )
    ).scalar_one()
    return int(value)


# --- the charge: one statement ---

# The spending rule lives in this statement, not in Python, so that a charge is one round trip and
# one atomic step: it locks the account (every writer of its grants holds that lock first), locks
# and re-reads the open grants (FOR UPDATE returns their latest versions even when the statement
# waited for the lock), decides whether the live ones hold enough, takes from them by priority,
# then soonest expiry (never-expiring last), then oldest, and records the entry with its postings.
# grant_rules.spending_order states the same rule in Python; tests/unit and tests/integration hold the
# two together on random grant sets.
_CHARGE = f"""
    WITH cur AS MATERIALIZED (
        SELECT user_id, is_unlimited
        FROM credit.accounts
        WHERE user_id = %(uid)s
          AND (%(feature)s = '' OR %(feature)s = ANY (features))
          AND NOT EXISTS (
              SELECT 1 FROM credit.entries WHERE user_id = %(uid)s AND idempotency_key = %(key)s)
        FOR UPDATE
    ), open AS MATERIALIZED (
        -- The scalar subquery runs first: the account is locked before any grant.
        SELECT g.id, g.category, g.remaining, g.priority, g.expires_at, g.effective_at
        FROM credit.grants g
        WHERE g.user_id = (SELECT user_id FROM cur)
          AND g.closed_at IS NULL AND g.remaining > 0
          AND g.effective_at <= now() AND (g.expires_at IS NULL OR g.expires_at > now())
        FOR UPDATE
    ), ordered AS (
        SELECT id, category, remaining,
               sum(remaining) OVER (ORDER BY priority, expires_at NULLS LAST, effective_at, id)
                   - remaining AS before
        FROM open
    ), decision AS (
        SELECT c.user_id, c.is_unlimited
        FROM cur c
        WHERE c.is_unlimited OR (SELECT COALESCE(sum(remaining), 0) FROM open) >= %(amount)s
    ), takes AS (
        -- Unlimited plans take nothing: the entry records usage only.
        SELECT o.id, o.category, LEAST(o.remaining, %(amount)s - o.before) AS take
        FROM ordered o, decision d
        WHERE NOT d.is_unlimited AND o.before < %(amount)s
    ), spent AS (
        UPDATE credit.grants g SET remaining = g.remaining - t.take
        FROM takes t
        WHERE g.id = t.id
    ), parts AS (
        SELECT COALESCE(sum(take) FILTER (WHERE category = 'allowance'), 0) AS ta,
               COALESCE(sum(take) FILTER (WHERE category = 'purchased'), 0) AS tp,
               COALESCE(sum(take) FILTER (
                   WHERE category IN ('promotional', 'compensation')), 0) AS tb
        FROM takes
    ), upd AS (
        UPDATE credit.accounts a
        SET allowance_balance = a.allowance_balance - p.ta,
            purchased_balance = a.purchased_balance - p.tp,
            bonus_balance = a.bonus_balance - p.tb,
            used_this_period = a.used_this_period + %(amount)s,
            updated_at = now()
        FROM decision d, parts p
        WHERE a.user_id = d.user_id
        RETURNING a.user_id, a.allowance_balance + a.purchased_balance + a.bonus_balance AS balance
    ), entry AS (
        INSERT INTO credit.entries (user_id, kind, idempotency_key, amount, allowance_delta,
                                    purchased_delta, bonus_delta, usage, reference, description,
                                    balance_after)
        SELECT u.user_id, 'charge', %(key)s, -(p.ta + p.tp + p.tb), -p.ta, -p.tp, -p.tb, %(amount)s,
               %(reference)s, %(description)s, u.balance
        FROM upd u, parts p
        RETURNING {ENTRY_COLUMNS}
    ), posted AS (
        INSERT INTO credit.postings (entry_id, grant_id, delta)
        SELECT e.id, t.id, -t.take FROM entry e, takes t
    ), held AS (
        -- A reservation (hold) is this same charge, marked open in the same statement.
        INSERT INTO credit.reservations (entry_id, user_id, held)
        SELECT e.id, e.user_id, e.usage FROM entry e WHERE %(hold)s
    )
    SELECT entry.*,
           (SELECT json_agg(json_build_array(t.id, t.category, -t.take) ORDER BY t.id)
            FROM takes t) AS postings
    FROM entry
    """


async def charge(
    conn: LeanConnection[Any],
    *,
    user_id: str,
    amount: int,
    key: str,
    reference: str,
    description: str,
    feature: str,
    hold: bool = False,
) -> Entry | None:
    """One run of the charge statement, on an autocommit connection (the statement is the
    transaction): the entry it wrote, or None when it wrote nothing (the key was used, the plan
    lacks the feature, too few live credits, no account, or it lost a race for the key). What that
    means is the ledger's decision (Ledger.charge). With `hold`, the charge is a reservation
    (services.credit.reservations settles or releases it)."""
    params = {
        "uid": user_id,
        "amount": amount,
        "key": key,
        "reference": reference,
        "description": description,
        "feature": feature,
        "hold": hold,
    }
    try:
        cursor = conn.cursor(row_factory=dict_row)
        await cursor.execute(_CHARGE, params)
        row = await cursor.fetchone()
    except LeanIntegrityError:
        return None  # a concurrent call with the same key won; the caller finds its entry
    if row is None:
        return None
    grants = [GrantDelta(g, Category(c), d) for g, c, d in row["postings"] or ()]
    return to_entry(row, grants)


# --- accounts and plans ---


async def create_account(conn: Connection, user_id: str, terms: PlanTerms) -> bool:
    """Concurrent first calls for one user: the loser of the insert waits for the winner's commit
    and then finds the account."""
    row = (
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
            _terms(user_id, terms),
        )
    ).first()
    return row is not None


async def set_terms(conn: Connection, user_id: str, terms: PlanTerms) -> None:
    await conn.execute(
        text(
            """
            UPDATE credit.accounts SET plan_name = :plan, monthly_allowance = :allowance,
                is_unlimited = :unlimited, features = :features, updated_at = now()
            WHERE user_id = :uid
            """
        ),
        _terms(user_id, terms),
    )


async def start_period(conn: Connection, user_id: str, start: datetime, end: datetime) -> None:
    await conn.execute(
        text(
            """
            UPDATE credit.accounts SET used_this_period = 0, reset_anchor = :start,
                period_started_at = :start, credit_reset_at = :end
            WHERE user_id = :uid
            """
        ),
        {"uid": user_id, "start": start, "end": end},
    )


def _terms(user_id: str, terms: PlanTerms) -> dict[str, Any]:
    return {
        "uid": user_id,
        "plan": terms.plan_name,
        "allowance": terms.monthly_allowance,
        "unlimited": terms.is_unlimited,
        "features": list(terms.features),
    }
