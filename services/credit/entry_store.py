"""Credit statements on entries and their postings (schema `credit`): the entry a key names, an
account's history, what a charge's refunds gave back, and the one way every change but a charge is
recorded (`post`, inside a transaction that holds the account lock; see store.py on concurrency).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from services.credit.domain import Category, Change, Entry, EntryKind, GrantDelta, column_deltas
from services.credit.rows import ENTRY_COLUMNS, to_entry
from services.kit.sql import Connection, text

# --- reads ---


async def find_entry(conn: Connection, user_id: str, key: str) -> Entry | None:
    row = (
        await conn.execute(
            text(
                f"SELECT {ENTRY_COLUMNS} FROM credit.entries "  # noqa: S608
                "WHERE user_id = :uid AND idempotency_key = :key"
            ),
            {"uid": user_id, "key": key},
        )
    ).first()
    if row is None:
        return None
    postings = await postings_of(conn, [row.id])
    return to_entry(row, postings.get(row.id, ()))


async def postings_of(conn: Connection, entry_ids: Sequence[int]) -> dict[int, list[GrantDelta]]:
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


async def refunded_of(conn: Connection, charge_id: int) -> tuple[int, int, int]:
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


async def left_of_charge(conn: Connection, charge_id: int) -> dict[int, int]:
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


async def list_entries(
    conn: Connection, user_id: str, *, limit: int, before_id: int | None
) -> Sequence[Entry]:
    rows = (
        await conn.execute(
            text(
                f"""
                SELECT {ENTRY_COLUMNS} FROM credit.entries
                WHERE user_id = :uid AND (CAST(:before AS bigint) IS NULL OR id < :before)
                ORDER BY id DESC
                LIMIT :limit
                """  # noqa: S608
            ),
            {"uid": user_id, "before": before_id, "limit": limit},
        )
    ).all()
    postings = await postings_of(conn, [r.id for r in rows])
    return [to_entry(r, postings.get(r.id, ())) for r in rows]


async def count_entries(conn: Connection, user_id: str, key_prefix: str) -> int:
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


# --- writes: every change but a charge, inside a transaction holding the account lock ---


async def post(
    conn: Connection,
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
    per_column = column_deltas(changes)
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
                """  # noqa: S608
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
    return to_entry(row, deltas)


async def record_refund_shares(
    conn: Connection,
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
