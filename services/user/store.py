"""User tables and queries (schema `users`)."""

from __future__ import annotations

from services.kit.sql import Connection, Row, text
from services.user.domain import Profile

COLUMNS = "id, email, name, credits_ready, created_at"


def _profile(row: Row) -> Profile:
    m = row._asdict()
    return Profile(
        id=m["id"],
        email=m["email"],
        name=m["name"],
        credits_ready=m["credits_ready"],
        created_at=m["created_at"],
    )


async def get(conn: Connection, user_id: str) -> Profile | None:
    row = (
        await conn.execute(
            text(f"SELECT {COLUMNS} FROM users.users WHERE id = :id"), {"id": user_id}
        )
    ).first()
    return _profile(row) if row else None


async def create_or_get(
    conn: Connection, user_id: str, email: str | None, name: str | None
) -> tuple[Profile, bool]:
    """Insert the profile unless it exists (then fill a missing email/name); returns it and whether
    this call created it. Concurrent calls for one id create exactly one row."""
    row = (
        await conn.execute(
            text(
                f"""
                INSERT INTO users.users (id, email, name) VALUES (:id, :email, :name)
                ON CONFLICT (id) DO UPDATE
                    SET email = COALESCE(users.users.email, EXCLUDED.email),
                        name = COALESCE(users.users.name, EXCLUDED.name),
                        updated_at = now()
                RETURNING {COLUMNS}, (xmax = 0) AS inserted
                """
            ),
            {"id": user_id, "email": email, "name": name},
        )
    ).one()
    return _profile(row), bool(row._asdict()["inserted"])


async def mark_credits_ready(conn: Connection, user_id: str) -> None:
    await conn.execute(
        text("UPDATE users.users SET credits_ready = true, updated_at = now() WHERE id = :id"),
        {"id": user_id},
    )
