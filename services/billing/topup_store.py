"""Statements of auto top-up (schema `billing`; tables from migration 0005). The f-strings only
insert the column lists below (constants), never input."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.kit import outbox
from services.kit.sql import Connection, text


@dataclass(frozen=True)
class TopUpSettings:
    user_id: str
    enabled: bool
    threshold: int
    pack_id: str
    payment_method_id: str | None
    failures: int
    disabled_reason: str

    @property
    def armed(self) -> bool:
        return self.enabled and self.payment_method_id is not None


@dataclass(frozen=True)
class TopUp:
    crossing_id: int
    user_id: str
    pack_id: str
    order_ref: str | None
    stripe_id: str | None
    status: str
    detail: str


_SETTINGS = "user_id, enabled, threshold, pack_id, payment_method_id, failures, disabled_reason"
_TOP_UP = "crossing_id, user_id, pack_id, order_ref, stripe_id, status, detail"


async def get_settings(
    conn: Connection, user_id: str, *, lock: bool = False
) -> TopUpSettings | None:
    row = (
        await conn.execute(
            text(
                f"SELECT {_SETTINGS} FROM billing.auto_top_ups WHERE user_id = :u"  # noqa: S608
                + (" FOR UPDATE" if lock else "")
            ),
            {"u": user_id},
        )
    ).first()
    return TopUpSettings(*row) if row else None


async def put_settings(
    conn: Connection, user_id: str, enabled: bool, threshold: int, pack_id: str
) -> TopUpSettings:
    """Save what the user chose; turning it on again forgets earlier failures."""
    row = (
        await conn.execute(
            text(
                f"""
                INSERT INTO billing.auto_top_ups (user_id, enabled, threshold, pack_id)
                VALUES (:u, :e, :t, :p)
                ON CONFLICT (user_id) DO UPDATE SET enabled = :e, threshold = :t, pack_id = :p,
                    failures = CASE WHEN :e THEN 0 ELSE billing.auto_top_ups.failures END,
                    disabled_reason = CASE WHEN :e THEN ''
                        ELSE billing.auto_top_ups.disabled_reason END,
                    updated_at = now()
                RETURNING {_SETTINGS}
                """  # noqa: S608
            ),
            {"u": user_id, "e": enabled, "t": threshold, "p": pack_id},
        )
    ).one()
    return TopUpSettings(*row)


async def save_card(conn: Connection, user_id: str, payment_method_id: str) -> TopUpSettings | None:
    row = (
        await conn.execute(
            text(
                f"UPDATE billing.auto_top_ups SET payment_method_id = :pm, updated_at = now()"  # noqa: S608
                f" WHERE user_id = :u RETURNING {_SETTINGS}"
            ),
            {"u": user_id, "pm": payment_method_id},
        )
    ).first()
    return TopUpSettings(*row) if row else None


async def record_result(
    conn: Connection, user_id: str, *, failed: bool, disable_after: int, reason: str
) -> TopUpSettings:
    """A top-up's outcome on the settings: failures counted (auto top-up turned off at the
    limit, with the reason) or reset by a success."""
    row = (
        await conn.execute(
            text(
                f"""
                UPDATE billing.auto_top_ups SET
                    failures = CASE WHEN :failed THEN failures + 1 ELSE 0 END,
                    enabled = enabled AND NOT (:failed AND failures + 1 >= :limit),
                    disabled_reason = CASE WHEN :failed AND failures + 1 >= :limit
                        THEN :reason ELSE disabled_reason END,
                    updated_at = now()
                WHERE user_id = :u RETURNING {_SETTINGS}
                """  # noqa: S608
            ),
            {"u": user_id, "failed": failed, "limit": disable_after, "reason": reason},
        )
    ).one()
    return TopUpSettings(*row)


async def start_top_up(
    conn: Connection, crossing_id: int, user_id: str, pack_id: str
) -> tuple[TopUp, bool]:
    """The crossing's one top-up row (created now: True; or the one a first attempt made)."""
    row = (
        await conn.execute(
            text(
                f"""
                INSERT INTO billing.top_ups (crossing_id, user_id, pack_id) VALUES (:c, :u, :p)
                ON CONFLICT (crossing_id) DO NOTHING RETURNING {_TOP_UP}
                """  # noqa: S608
            ),
            {"c": crossing_id, "u": user_id, "p": pack_id},
        )
    ).first()
    if row is not None:
        return TopUp(*row), True
    existing = (
        await conn.execute(
            text(f"SELECT {_TOP_UP} FROM billing.top_ups WHERE crossing_id = :c FOR UPDATE"),  # noqa: S608
            {"c": crossing_id},
        )
    ).one()
    return TopUp(*existing), False


async def top_ups_today(conn: Connection, user_id: str) -> int:
    """Top-ups started (paid or on their way) in the last 24 hours."""
    value = await conn.execute(
        text(
            "SELECT count(*) FROM billing.top_ups WHERE user_id = :u"
            " AND status IN ('pending', 'succeeded') AND created_at > now() - interval '1 day'"
        ),
        {"u": user_id},
    )
    return int(value.scalar_one())


async def bind_top_up(conn: Connection, crossing_id: int, order_ref: str) -> None:
    await conn.execute(
        text("UPDATE billing.top_ups SET order_ref = :o WHERE crossing_id = :c"),
        {"c": crossing_id, "o": order_ref},
    )


async def finish_top_up(
    conn: Connection, crossing_id: int, status: str, stripe_id: str | None, detail: str
) -> bool:
    """Move a pending top-up to its outcome; False when it had one already (so the caller's event
    is written once)."""
    row = await conn.execute(
        text(
            """
            UPDATE billing.top_ups SET status = :s, stripe_id = COALESCE(:sid, stripe_id),
                detail = :d, finished_at = now()
            WHERE crossing_id = :c AND status = 'pending' RETURNING crossing_id
            """
        ),
        {"c": crossing_id, "s": status, "sid": stripe_id, "d": detail[:300]},
    )
    return row.first() is not None


async def enqueue_event(
    conn: Connection, event_type: str, user_id: str, data: dict[str, Any]
) -> str:
    """A webhook event in billing's outbox, on the caller's transaction."""
    return await outbox.enqueue(conn, "billing", event_type, user_id, data)
