"""Credit tables and statements (schema `credit`): accounts, grants, entries and their postings.

Concurrency: every writer of an account's grants holds the account row lock first (a charge locks
it in its one statement; other operations lock it at the start of their transaction; the reset
and expiry batches take it with SKIP LOCKED). Grant rows are therefore never contended between
writers, and lock order is always account, then grants. The unique (user_id, idempotency_key)
constraint is the last word on retries: a lost race ends in a unique violation that rolls the whole
statement back, and the first result is returned instead.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from psycopg import AsyncConnection as LeanConnection
from psycopg import IntegrityError as LeanIntegrityError
from psycopg.rows import dict_row
from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.credit.domain import (
    Account,
    Category,
    Change,
    CloseReason,
    Entry,
    EntryKind,
    Grant,
    GrantDelta,
    NewGrant,
    PlanTerms,
)

ENTRY_COLUMNS = (
    "id, user_id, kind, idempotency_key, amount, allowance_delta, purchased_delta, bonus_delta, "
    "owed_delta, usage, reference, description, balance_after, created_at, actor, reason"
)
ACCOUNT_COLUMNS = (
    "user_id, plan_name, monthly_allowance, is_unlimited, features, allowance_balance, "
    "purchased_balance, bonus_balance, owed, used_this_period, period_started_at, credit_reset_at"
)
GRANT_COLUMNS = (
    "id, user_id, category, amount, remaining, priority, effective_at, expires_at, closed_at, "
    "closed_reason, source_key, reference, clawed, created_at"
)


def _fields(row: Row[Any] | Mapping[str, Any]) -> Mapping[str, Any]:
    """A row's columns by name: a SQLAlchemy Row, or a mapping (the lean path's rows)."""
    return row if isinstance(row, Mapping) else cast(Mapping[str, Any], row._mapping)


def _entry(row: Row[Any] | Mapping[str, Any], grants: Sequence[GrantDelta] = ()) -> Entry:
    m = _fields(row)
    return Entry(
        id=m["id"],
        user_id=m["user_id"],
        kind=EntryKind(m["kind"]),
        idempotency_key=m["idempotency_key"],
        amount=m["amount"],
        allowance_delta=m["allowance_delta"],
        purchased_delta=m["purchased_delta"],
        bonus_delta=m["bonus_delta"],
        owed_delta=m["owed_delta"],
        usage=m["usage"],
        reference=m["reference"],
        description=m["description"],
        balance_after=m["balance_after"],
        created_at=m["created_at"],
        actor=m["actor"],
        reason=m["reason"],
        grants=tuple(grants),
    )


def _account(row: Row[Any] | Mapping[str, Any]) -> Account:
    m = _fields(row)
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
        bonus_balance=m["bonus_balance"],
        owed=m["owed"],
        used_this_period=m["used_this_period"],
        period_started_at=m["period_started_at"],
        credit_reset_at=m["credit_reset_at"],
    )


def _grant(row: Row[Any] | Mapping[str, Any]) -> Grant:
    m = _fields(row)
    return Grant(
        id=m["id"],
        user_id=m["user_id"],
        category=Category(m["category"]),
        amount=m["amount"],
        remaining=m["remaining"],
        priority=m["priority"],
        effective_at=m["effective_at"],
        expires_at=m["expires_at"],
        closed_at=m["closed_at"],
        closed_reason=CloseReason(m["closed_reason"]) if m["closed_reason"] else None,
        source_key=m["source_key"],
        reference=m["reference"],
        clawed=m["clawed"],
        created_at=m["created_at"],
    )


# --- reads ---


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
    account = _account(dict(zip(_ACCOUNT_NAMES, rows[0][:accounts], strict=True)))
    grants = [
        _grant(dict(zip(_GRANT_NAMES, row[accounts + 1 :], strict=True)))
        for row in rows
        if row[accounts + 1] is not None
    ]
    return account, grants, int(rows[0][accounts])


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
    if row is None:
        return None
    postings = await postings_of(conn, [row.id])
    return _entry(row, postings.get(row.id, ()))


async def postings_of(
    conn: AsyncConnection, entry_ids: Sequence[int]
) -> dict[int, list[GrantDelta]]:
    """Each entry's per-grant changes (none for entries made before grants existed)."""
    if not entry_ids:
        return {}
    rows = await conn.execute(
        text(
            """
            SELECT p.entry_id, p.grant_id, g.category, p.delta
            FROM credit.postings p JOIN credit.grants g ON g.id = p.grant_id
            WHERE p.entry_id = ANY (:ids)
            ORDER BY p.entry_id, p.grant_id
            """
        ),
        {"ids": list(entry_ids)},
    )
    found: dict[int, list[GrantDelta]] = defaultdict(list)
    for entry_id, grant_id, category, delta in rows:
        found[entry_id].append(GrantDelta(grant_id, Category(category), delta))
    return found


async def open_grants(conn: AsyncConnection, user_id: str) -> list[Grant]:
    """The account's open grants (the caller holds the account lock when it will change them)."""
    rows = await conn.execute(
        text(
            f"SELECT {GRANT_COLUMNS} FROM credit.grants WHERE user_id = :uid AND closed_at IS NULL "
            "ORDER BY priority, expires_at NULLS LAST, effective_at, id"
        ),
        {"uid": user_id},
    )
    return [_grant(r) for r in rows]


async def list_grants(
    conn: AsyncConnection, user_id: str, *, include_closed: bool, limit: int = 200
) -> list[Grant]:
    where = "" if include_closed else " AND closed_at IS NULL"
    rows = await conn.execute(
        text(
            f"SELECT {GRANT_COLUMNS} FROM credit.grants WHERE user_id = :uid{where} "
            "ORDER BY closed_at IS NOT NULL, priority, expires_at NULLS LAST, effective_at, id "
            "LIMIT :limit"
        ),
        {"uid": user_id, "limit": limit},
    )
    return [_grant(r) for r in rows]


async def grant_by_key(conn: AsyncConnection, user_id: str, source_key: str) -> Grant | None:
    row = (
        await conn.execute(
            text(
                f"SELECT {GRANT_COLUMNS} FROM credit.grants "
                "WHERE user_id = :uid AND source_key = :key"
            ),
            {"uid": user_id, "key": source_key},
        )
    ).first()
    return _grant(row) if row else None


async def grant_by_id(conn: AsyncConnection, grant_id: int) -> Grant | None:
    row = (
        await conn.execute(
            text(f"SELECT {GRANT_COLUMNS} FROM credit.grants WHERE id = :id"), {"id": grant_id}
        )
    ).first()
    return _grant(row) if row else None


async def grants_by_id(conn: AsyncConnection, ids: Sequence[int]) -> dict[int, Grant]:
    rows = await conn.execute(
        text(f"SELECT {GRANT_COLUMNS} FROM credit.grants WHERE id = ANY (:ids)"), {"ids": list(ids)}
    )
    return {r.id: _grant(r) for r in rows}


async def refunded_of(conn: AsyncConnection, charge_id: int) -> tuple[int, int, int]:
    """What earlier refunds of a charge gave back, by the category it was taken from: (allowance,
    purchased, usage). Refunds recorded before grants existed count by their own deltas."""
    row = (
        await conn.execute(
            text(
                """
                SELECT
                    COALESCE(sum(e.allowance_delta) FILTER (WHERE NOT e.shared), 0)
                        + COALESCE((SELECT sum(back) FROM credit.refund_shares
                                    WHERE charge_id = :charge AND category = 'allowance'), 0),
                    COALESCE(sum(e.purchased_delta) FILTER (WHERE NOT e.shared), 0)
                        + COALESCE((SELECT sum(back) FROM credit.refund_shares
                                    WHERE charge_id = :charge AND category <> 'allowance'), 0),
                    COALESCE(-sum(e.usage), 0)
                FROM (
                    SELECT r.allowance_delta, r.purchased_delta, r.usage,
                           EXISTS (SELECT 1 FROM credit.refund_shares s
                                   WHERE s.refund_id = r.id) AS shared
                    FROM credit.entries r WHERE r.refund_of = :charge
                ) e
                """
            ),
            {"charge": charge_id},
        )
    ).one()
    return int(row[0]), int(row[1]), int(row[2])


async def left_of_charge(conn: AsyncConnection, charge_id: int) -> dict[int, int]:
    """Per grant, what a charge took minus what its refunds gave back for that grant (to it, or,
    when it had closed, to the grant that received its share instead)."""
    rows = await conn.execute(
        text(
            """
            SELECT p.grant_id, -p.delta - COALESCE((
                SELECT sum(s.back) FROM credit.refund_shares s
                WHERE s.charge_id = :charge AND s.from_grant = p.grant_id), 0)
            FROM credit.postings p WHERE p.entry_id = :charge
            """
        ),
        {"charge": charge_id},
    )
    return {int(grant_id): int(left) for grant_id, left in rows}


async def live_balance(conn: AsyncConnection, user_id: str) -> int:
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


async def list_entries(
    conn: AsyncConnection, user_id: str, *, limit: int, before_id: int | None
) -> Sequence[Entry]:
    rows = (
        await conn.execute(
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
    ).all()
    postings = await postings_of(conn, [r.id for r in rows])
    return [_entry(r, postings.get(r.id, ())) for r in rows]


async def balance(conn: AsyncConnection, user_id: str) -> int:
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
# domain.spending_order states the same rule in Python; tests/unit and tests/integration hold the
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
    return _entry(row, grants)


# --- postings: every other change, inside a transaction holding the account lock ---


async def create_grant(
    conn: AsyncConnection,
    user_id: str,
    new: NewGrant,
    *,
    source_key: str,
    effective_at: datetime | None = None,
) -> Grant:
    """A grant with nothing in it yet: the entry that creates it posts its credits."""
    row = (
        await conn.execute(
            text(
                f"""
                INSERT INTO credit.grants (user_id, category, amount, remaining, priority,
                    effective_at, expires_at, source_key, reference)
                VALUES (:uid, :category, :amount, 0, :priority, COALESCE(:effective, now()),
                        :expires, :key, :reference)
                RETURNING {GRANT_COLUMNS}
                """
            ),
            {
                "uid": user_id,
                "category": new.category.value,
                "amount": new.amount,
                "priority": new.priority,
                "effective": effective_at,
                "expires": new.expires_at,
                "key": source_key,
                "reference": new.reference,
            },
        )
    ).one()
    return _grant(row)


async def post(
    conn: AsyncConnection,
    *,
    user_id: str,
    kind: EntryKind,
    key: str,
    changes: Sequence[Change],
    owed_delta: int = 0,
    usage: int = 0,
    used_delta: int = 0,
    reference: str = "",
    description: str = "",
    actor: str = "",
    reason: str = "",
    refund_of: int | None = None,
) -> Entry:
    """Record one entry: its changes to grants (closing those it closes), the account's balance
    columns and debt, and its postings. The caller holds the account lock."""
    per_column = {"allowance": 0, "purchased": 0, "bonus": 0}
    for change in changes:
        per_column[change.grant.category.column] += change.delta
    if changes:
        await conn.execute(
            text(
                """
                UPDATE credit.grants g
                SET remaining = g.remaining + c.delta,
                    closed_at = CASE WHEN c.close = '' THEN g.closed_at ELSE now() END,
                    closed_reason = COALESCE(NULLIF(c.close, ''), g.closed_reason)
                FROM unnest(CAST(:ids AS bigint[]), CAST(:deltas AS integer[]),
                            CAST(:closes AS text[])) AS c(id, delta, close)
                WHERE g.id = c.id
                """
            ),
            {
                "ids": [c.grant.id for c in changes],
                "deltas": [c.delta for c in changes],
                "closes": [c.close.value if c.close else "" for c in changes],
            },
        )
    amount = sum(per_column.values())
    balance = (
        await conn.execute(
            text(
                """
                UPDATE credit.accounts
                SET allowance_balance = allowance_balance + :a,
                    purchased_balance = purchased_balance + :p,
                    bonus_balance = bonus_balance + :b,
                    owed = owed + :owed,
                    used_this_period = GREATEST(used_this_period + :used, 0),
                    updated_at = now()
                WHERE user_id = :uid
                RETURNING allowance_balance + purchased_balance + bonus_balance
                """
            ),
            {
                "uid": user_id,
                "a": per_column["allowance"],
                "p": per_column["purchased"],
                "b": per_column["bonus"],
                "owed": owed_delta,
                "used": used_delta,
            },
        )
    ).scalar_one()
    row = (
        await conn.execute(
            text(
                f"""
                INSERT INTO credit.entries (user_id, kind, idempotency_key, amount,
                    allowance_delta, purchased_delta, bonus_delta, owed_delta, usage, reference,
                    description, refund_of, balance_after, actor, reason)
                VALUES (:uid, :kind, :key, :amount, :a, :p, :b, :owed, :usage, :reference,
                        :description, :refund_of, :balance, :actor, :reason)
                RETURNING {ENTRY_COLUMNS}
                """
            ),
            {
                "uid": user_id,
                "kind": kind.value,
                "key": key,
                "amount": amount,
                "a": per_column["allowance"],
                "p": per_column["purchased"],
                "b": per_column["bonus"],
                "owed": owed_delta,
                "usage": usage,
                "reference": reference,
                "description": description,
                "refund_of": refund_of,
                "balance": balance,
                "actor": actor,
                "reason": reason,
            },
        )
    ).one()
    deltas = [GrantDelta(c.grant.id, c.grant.category, c.delta) for c in changes]
    if deltas:
        await conn.execute(
            text(
                """
                INSERT INTO credit.postings (entry_id, grant_id, delta)
                SELECT :entry, id, delta
                FROM unnest(CAST(:ids AS bigint[]), CAST(:deltas AS integer[])) AS c(id, delta)
                """
            ),
            {
                "entry": row.id,
                "ids": [d.grant_id for d in deltas],
                "deltas": [d.delta for d in deltas],
            },
        )
    return _entry(row, deltas)


async def record_refund_shares(
    conn: AsyncConnection,
    charge_id: int,
    refund_id: int,
    shares: Sequence[tuple[int | None, Category, int]],
) -> None:
    """Where each refunded credit came from: (source grant or None, its category, credits)."""
    await conn.execute(
        text(
            """
            INSERT INTO credit.refund_shares (charge_id, refund_id, from_grant, category, back)
            SELECT :charge, :refund, g, c, n
            FROM unnest(CAST(:grants AS bigint[]), CAST(:categories AS text[]),
                        CAST(:backs AS integer[])) AS s(g, c, n)
            """
        ),
        {
            "charge": charge_id,
            "refund": refund_id,
            "grants": [g for g, _, _ in shares],
            "categories": [c.value for _, c, _ in shares],
            "backs": [n for _, _, n in shares],
        },
    )


async def close_grants(conn: AsyncConnection, ids: Sequence[int], reason: CloseReason) -> None:
    """Close grants that hold nothing (no entry needed: nothing changes hands)."""
    await conn.execute(
        text(
            "UPDATE credit.grants SET closed_at = now(), closed_reason = :reason "
            "WHERE id = ANY (:ids) AND remaining = 0 AND closed_at IS NULL"
        ),
        {"ids": list(ids), "reason": reason.value},
    )


async def count_entries(conn: AsyncConnection, user_id: str, key_prefix: str) -> int:
    value = (
        await conn.execute(
            text(
                "SELECT count(*) FROM credit.entries WHERE user_id = :uid "
                "AND left(idempotency_key, :n) = :prefix"
            ),
            {"uid": user_id, "prefix": key_prefix, "n": len(key_prefix)},
        )
    ).scalar_one()
    return int(value)


async def set_clawed(conn: AsyncConnection, grant_id: int, clawed: int) -> None:
    await conn.execute(
        text("UPDATE credit.grants SET clawed = :clawed WHERE id = :id"),
        {"id": grant_id, "clawed": clawed},
    )


# --- accounts and plans ---


async def create_account(conn: AsyncConnection, user_id: str, terms: PlanTerms) -> bool:
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


async def set_terms(conn: AsyncConnection, user_id: str, terms: PlanTerms) -> None:
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


async def start_period(conn: AsyncConnection, user_id: str, start: datetime, end: datetime) -> None:
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
