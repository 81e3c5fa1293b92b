"""User profiles.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE users.users (
            id            text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 128),
            email         text CHECK (length(email) <= 254),
            name          text CHECK (length(name) <= 100),
            -- False until the credit account (Free plan, first allowance) is confirmed; a retry of
            -- initialize or /me finishes what a crash left half done.
            credits_ready boolean NOT NULL DEFAULT false,
            created_at    timestamptz NOT NULL DEFAULT now(),
            updated_at    timestamptz NOT NULL DEFAULT now()
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE users.users")
