"""Statements of balance alerts, thresholds, top-up crossings and expiry warnings (schema
`credit`; tables and trigger from migration 0004)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.credit.alert_rules import default_low_threshold
from services.kit import outbox
from services.kit.sql import Connection, text


@dataclass(frozen=True)
class AlertRow:
    id: int
    kind: str
    message: str
    data: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class Crossing:
    id: int
    user_id: str
    balance: int
    threshold: int


async def list_alerts(conn: Connection, user_id: str, limit: int) -> list[AlertRow]:
    rows = await conn.execute(
        text(
            "SELECT id, kind, message, data, created_at FROM credit.alerts"
            " WHERE user_id = :u ORDER BY id DESC LIMIT :n"
        ),
        {"u": user_id, "n": limit},
    )
    return [AlertRow(r.id, r.kind, r.message, dict(r.data), r.created_at) for r in rows]


async def set_topup_threshold(conn: Connection, user_id: str, threshold: int | None) -> bool:
    """False when the user has no credit account."""
    row = await conn.execute(
        text(
            """
            INSERT INTO credit.balance_watch (user_id, topup_threshold)
            SELECT user_id, :t FROM credit.accounts WHERE user_id = :u
            ON CONFLICT (user_id) DO UPDATE SET topup_threshold = :t, updated_at = now()
            RETURNING user_id
            """
        ),
        {"u": user_id, "t": threshold},
    )
    return row.first() is not None


async def raise_alert(
    conn: Connection, user_id: str, kind: str, message: str, key: str, data: dict[str, Any]
) -> bool:
    """The alert, once per (user, key); False for a repeat."""
    row = await conn.execute(
        text(
            """
            INSERT INTO credit.alerts (user_id, kind, message, source_key, data)
            VALUES (:u, :k, :m, :key, CAST(:d AS jsonb))
            ON CONFLICT (user_id, source_key) DO NOTHING RETURNING id
            """
        ),
        {"u": user_id, "k": kind, "m": message, "key": key, "d": json.dumps(data)},
    )
    return row.first() is not None


async def pending_topups(conn: Connection, limit: int) -> list[Crossing]:
    rows = await conn.execute(
        text(
            "SELECT id, user_id, balance, threshold FROM credit.topup_requests"
            " WHERE done_at IS NULL ORDER BY id LIMIT :n"
        ),
        {"n": limit},
    )
    return [Crossing(r.id, r.user_id, r.balance, r.threshold) for r in rows]


async def finish_topup(conn: Connection, crossing_id: int) -> None:
    await conn.execute(
        text("UPDATE credit.topup_requests SET done_at = now() WHERE id = :id AND done_at IS NULL"),
        {"id": crossing_id},
    )


async def warn_expiring(conn: Connection, within_hours: int, limit: int) -> int:
    """One `grant.expiring` alert and event per open, non-allowance grant with credits left that
    expires within the window (grant_warnings remembers which were warned)."""
    rows = await conn.execute(
        text(
            """
            WITH due AS (
                SELECT g.id, g.user_id, g.remaining, g.expires_at FROM credit.grants g
                WHERE g.closed_at IS NULL AND g.remaining > 0 AND g.expires_at IS NOT NULL
                  AND g.expires_at > now()
                  AND g.expires_at <= now() + make_interval(hours => :h)
                  AND NOT EXISTS (SELECT 1 FROM credit.grant_warnings w WHERE w.grant_id = g.id)
                ORDER BY g.expires_at LIMIT :n
            ), marked AS (
                INSERT INTO credit.grant_warnings (grant_id) SELECT id FROM due
                ON CONFLICT DO NOTHING RETURNING grant_id
            )
            SELECT due.* FROM due JOIN marked ON marked.grant_id = due.id
            """
        ),
        {"h": within_hours, "n": limit},
    )
    warned = 0
    for r in rows:
        data = {
            "userId": r.user_id,
            "grantId": str(r.id),
            "credits": r.remaining,
            "expiresAt": r.expires_at.isoformat(),
        }
        message = f"{r.remaining} credits expire on {r.expires_at:%Y-%m-%d %H:%M} UTC"
        await raise_alert(conn, r.user_id, "grant.expiring", message, f"grant:{r.id}", data)
        await outbox.enqueue(conn, "credit", "grant.expiring", r.user_id, data)
        warned += 1
    return warned


async def set_low_threshold(
    conn: Connection, user_id: str, threshold: int | None
) -> tuple[int, bool] | None:
    """The user's low-balance threshold (None: the plan's); the one in force and whether it is the
    plan's, or None when the user has no credit account."""
    row = (
        await conn.execute(
            text(
                """
                WITH saved AS (
                    INSERT INTO credit.balance_watch (user_id, low_threshold)
                    SELECT user_id, :t FROM credit.accounts WHERE user_id = :u
                    ON CONFLICT (user_id) DO UPDATE SET low_threshold = :t, updated_at = now()
                    RETURNING user_id, low_threshold
                )
                SELECT saved.low_threshold, a.monthly_allowance
                FROM saved JOIN credit.accounts a USING (user_id)
                """
            ),
            {"u": user_id, "t": threshold},
        )
    ).first()
    if row is None:
        return None
    if row.low_threshold is None:
        return default_low_threshold(row.monthly_allowance), True
    return row.low_threshold, False
