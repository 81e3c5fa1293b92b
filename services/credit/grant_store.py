"""Credit statements on grants (schema `credit`): an account's grants, a grant by its key or id, and
the changes to a grant no entry records (creating it empty, closing an empty one, what was clawed
back for it). Credits move in and out of grants only through an entry (entry_store.post, or the
charge in store.py); callers that change grants hold the account lock (see store.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from services.credit.domain import CloseReason, Grant, NewGrant
from services.credit.rows import GRANT_COLUMNS, to_grant
from services.kit.sql import Connection, text

# --- reads ---


async def open_grants(conn: Connection, user_id: str) -> list[Grant]:
    """The account's open grants (the caller holds the account lock when it will change them)."""
    rows = await conn.execute(
        text(
            f"SELECT {GRANT_COLUMNS} FROM credit.grants WHERE user_id = :uid AND closed_at IS NULL "  # noqa: S608
            "ORDER BY priority, expires_at NULLS LAST, effective_at, id"
        ),
        {"uid": user_id},
    )
    return [to_grant(r) for r in rows]


async def list_grants(
    conn: Connection, user_id: str, *, include_closed: bool, limit: int = 200
) -> list[Grant]:
    where = "" if include_closed else " AND closed_at IS NULL"
    rows = await conn.execute(
        text(
            f"SELECT {GRANT_COLUMNS} FROM credit.grants WHERE user_id = :uid{where} "  # noqa: S608
            "ORDER BY closed_at IS NOT NULL, priority, expires_at NULLS LAST, effective_at, id "
            "LIMIT :limit"
        ),
        {"uid": user_id, "limit": limit},
    )
    return [to_grant(r) for r in rows]


async def grant_by_key(conn: Connection, user_id: str, source_key: str) -> Grant | None:
    row = (
        await conn.execute(
            text(
                f"SELECT {GRANT_COLUMNS} FROM credit.grants "  # noqa: S608
                "WHERE user_id = :uid AND source_key = :key"
            ),
            {"uid": user_id, "key": source_key},
        )
    ).first()
    return to_grant(row) if row else None


async def grant_by_id(conn: Connection, grant_id: int) -> Grant | None:
    row = (
        await conn.execute(
            text(f"SELECT {GRANT_COLUMNS} FROM credit.grants WHERE id = :id"),  # noqa: S608
            {"id": grant_id},
        )
    ).first()
    return to_grant(row) if row else None


async def grants_by_id(conn: Connection, ids: Sequence[int]) -> dict[int, Grant]:
    rows = await conn.execute(
        text(f"SELECT {GRANT_COLUMNS} FROM credit.grants WHERE id = ANY (:ids)"),  # noqa: S608
        {"ids": list(ids)},
    )
    return {r.id: to_grant(r) for r in rows}


# --- writes ---


async def create_grant(
    conn: Connection,
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
                """  # noqa: S608
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
    return to_grant(row)


async def close_grants(conn: Connection, ids: Sequence[int], reason: CloseReason) -> None:
    """Close grants that hold nothing (no entry needed: nothing changes hands)."""
    await conn.execute(
        text(
            "UPDATE credit.grants SET closed_at = now(), closed_reason = :reason "
            "WHERE id = ANY (:ids) AND remaining = 0 AND closed_at IS NULL"
        ),
        {"ids": list(ids), "reason": reason.value},
    )


async def set_clawed(conn: Connection, grant_id: int, clawed: int) -> None:
    await conn.execute(
        text("UPDATE credit.grants SET clawed = :clawed WHERE id = :id"),
        {"id": grant_id, "clawed": clawed},
    )
