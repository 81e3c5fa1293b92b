"""Reservations: a charge made with `hold` is held until the work it pays for is settled (charged
what it measured, the rest given back) or released (given back whole, by a refund).

The hold itself is an ordinary charge entry (it took the credits from the grants, in spending
order); this table only says which charges are holds and how each one ended, so the open ones can
be shown (available = balance - open reservations) and checked by VerifyLedger.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE credit.reservations (
            -- The hold's charge entry (written in the same statement as this row).
            entry_id     bigint PRIMARY KEY REFERENCES credit.entries (id),
            user_id      text NOT NULL,
            -- Credits (usage, for an unlimited plan's hold) the hold took.
            held         integer NOT NULL CHECK (held >= 0),
            state        text NOT NULL DEFAULT 'open'
                CHECK (state IN ('open', 'settled', 'released')),
            -- Set when settled: the measured cost asked for, what was charged (never above the
            -- hold) and what went uncharged above it; the entry that gave the rest back, if any.
            cost         integer CHECK (cost >= 0),
            charged      integer CHECK (charged >= 0 AND charged <= held),
            uncharged    integer NOT NULL DEFAULT 0 CHECK (uncharged >= 0),
            settle_entry bigint REFERENCES credit.entries (id),
            created_at   timestamptz NOT NULL DEFAULT now(),
            ended_at     timestamptz,
            CONSTRAINT reservations_settled CHECK ((state = 'settled') = (charged IS NOT NULL))
        )
        """
    )
    op.execute(
        "CREATE INDEX reservations_open ON credit.reservations (user_id) WHERE state = 'open'"
    )


def downgrade() -> None:
    op.execute("DROP TABLE credit.reservations")
