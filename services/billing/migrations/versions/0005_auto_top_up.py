"""Auto top-up: each user's settings and saved card, one row per threshold crossing (the top-up it
led to, or why none), and billing's outbox of webhook events (topup.succeeded, topup.failed).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

from services.kit.outbox import outbox_ddl

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE billing.auto_top_ups (
            user_id           text PRIMARY KEY,
            enabled           boolean NOT NULL,
            threshold         integer NOT NULL CHECK (threshold BETWEEN 1 AND 1000000),
            pack_id           text NOT NULL REFERENCES billing.credit_packs (id),
            -- The card saved through Checkout in setup mode (off-session payments).
            payment_method_id text,
            -- Consecutive failures; reaching the limit turns auto top-up off.
            failures          integer NOT NULL DEFAULT 0 CHECK (failures >= 0),
            disabled_reason   text NOT NULL DEFAULT '',
            updated_at        timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        """
        CREATE TABLE billing.top_ups (
            -- credit.topup_requests id: one top-up per crossing, whatever is retried.
            crossing_id bigint PRIMARY KEY,
            user_id     text NOT NULL,
            pack_id     text NOT NULL,
            order_ref   text,
            stripe_id   text,
            status      text NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'succeeded', 'failed', 'skipped')),
            detail      text NOT NULL DEFAULT '',
            created_at  timestamptz NOT NULL DEFAULT now(),
            finished_at timestamptz
        )
        """
    )
    op.execute("CREATE INDEX top_ups_user_recent ON billing.top_ups (user_id, created_at)")
    for statement in outbox_ddl("billing"):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE billing.outbox")
    op.execute("DROP TABLE billing.top_ups")
    op.execute("DROP TABLE billing.auto_top_ups")
