"""Reservation statements (table `credit.reservations`). A reservation row is written by the
charge statement itself (store.charge with hold); these read and end them, inside a transaction
that holds the account lock."""

from __future__ import annotations

from dataclasses import dataclass

from services.kit.sql import Connection, text


@dataclass(frozen=True)
class Reservation:
    entry_id: int
    user_id: str
    held: int
    state: str  # open, settled, released
    cost: int | None
    charged: int | None
    uncharged: int


_COLUMNS = "entry_id, user_id, held, state, cost, charged, uncharged"


async def of_entry(conn: Connection, entry_id: int) -> Reservation | None:
    row = (
        await conn.execute(
            text(f"SELECT {_COLUMNS} FROM credit.reservations WHERE entry_id = :id FOR UPDATE"),  # noqa: S608
            {"id": entry_id},
        )
    ).first()
    return Reservation(*row) if row else None


async def settle(
    conn: Connection,
    entry_id: int,
    *,
    cost: int,
    charged: int,
    uncharged: int,
    settle_entry: int | None,
) -> bool:
    result = await conn.execute(
        text(
            """
            UPDATE credit.reservations
            SET state = 'settled', cost = :cost, charged = :charged, uncharged = :uncharged,
                settle_entry = :entry, ended_at = now()
            WHERE entry_id = :id AND state = 'open'
            """
        ),
        {
            "id": entry_id,
            "cost": cost,
            "charged": charged,
            "uncharged": uncharged,
            "entry": settle_entry,
        },
    )
    return bool(result.rowcount)


async def release(conn: Connection, entry_id: int) -> None:
    """An open hold given back whole (a no-op for a charge that is not an open hold)."""
    await conn.execute(
        text(
            "UPDATE credit.reservations SET state = 'released', ended_at = now() "
            "WHERE entry_id = :id AND state = 'open'"
        ),
        {"id": entry_id},
    )


async def held_by(conn: Connection, user_id: str) -> int:
    """Credits the account's open reservations hold."""
    value = (
        await conn.execute(
            text(
                "SELECT COALESCE(sum(held), 0) FROM credit.reservations "
                "WHERE user_id = :uid AND state = 'open'"
            ),
            {"uid": user_id},
        )
    ).scalar_one()
    return int(value)


# What every reservation must agree with: its hold entry took `held` (credits, or usage on an
# unlimited plan); an open one has had nothing given back; a settled one gave back exactly
# held - charged (by its settle entry; a later refund may give back more, never past the hold);
# a released one gave back everything.
_VERIFY = text(
    """
    SELECT r.user_id, r.entry_id, r.state, r.held, e.usage, r.charged,
           COALESCE(b.back, 0) AS back, COALESCE(s.usage, 0) AS settle_back
    FROM credit.reservations r
    JOIN credit.entries e ON e.id = r.entry_id
    LEFT JOIN (SELECT refund_of, -sum(usage) AS back FROM credit.entries
               WHERE refund_of IS NOT NULL GROUP BY refund_of) b ON b.refund_of = r.entry_id
    LEFT JOIN credit.entries s ON s.id = r.settle_entry
    WHERE e.usage <> r.held
       OR (r.state = 'open' AND COALESCE(b.back, 0) <> 0)
       OR (r.state = 'settled' AND (-COALESCE(s.usage, 0) <> r.held - r.charged
                                    OR COALESCE(b.back, 0) > r.held))
       OR (r.state = 'released' AND COALESCE(b.back, 0) <> r.held)
    ORDER BY r.user_id, r.entry_id
    """
)


async def verify(conn: Connection) -> tuple[int, int, list[tuple[str, str, int, int]]]:
    """(open reservations, credits they hold, problems as (user, problem, held, given back))."""
    count, held = (
        await conn.execute(
            text(
                "SELECT count(*), COALESCE(sum(held), 0) FROM credit.reservations "
                "WHERE state = 'open'"
            )
        )
    ).one()
    problems = []
    for user_id, entry_id, state, r_held, usage, _charged, back, _settle in await conn.execute(
        _VERIFY
    ):
        if usage != r_held:
            problems.append((user_id, f"reservation {entry_id} holds", r_held, int(usage)))
        else:
            problems.append((user_id, f"{state} reservation {entry_id}", r_held, int(back)))
    return int(count), int(held), problems
