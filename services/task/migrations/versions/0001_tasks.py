"""AI tasks with their state machine and their settlement with the credit ledger.

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
        CREATE TABLE tasks.tasks (
            id               uuid PRIMARY KEY,
            seq              bigserial NOT NULL UNIQUE,
            user_id          text NOT NULL,
            type             text NOT NULL,
            status           text NOT NULL
                CHECK (status IN ('pending', 'processing', 'done', 'failed', 'cancelled')),
            input_data       jsonb NOT NULL DEFAULT '{}'::jsonb,
            output_data      jsonb,
            error            text,
            credits_cost     integer NOT NULL CHECK (credits_cost > 0),
            -- Where the task stands with the credit ledger (its charge key is 'task:<id>'):
            -- reserved (charge not confirmed yet), charged, refunding (refund owed),
            -- refunded, released (no charge existed when it was given up; rechecked for a while).
            charge_state     text NOT NULL
                CHECK (charge_state IN ('reserved', 'charged', 'refunding', 'refunded', 'released')),
            idempotency_key  text,
            request_hash     text,
            attempts         integer NOT NULL DEFAULT 0,
            lease_owner      text,
            lease_expires_at timestamptz,
            created_at       timestamptz NOT NULL DEFAULT now(),
            updated_at       timestamptz NOT NULL DEFAULT now(),
            completed_at     timestamptz,
            settled_at       timestamptz,
            CONSTRAINT tasks_client_key UNIQUE (user_id, idempotency_key)
        )
        """
    )
    op.execute("CREATE INDEX tasks_user_newest ON tasks.tasks (user_id, seq DESC)")
    op.execute(
        "CREATE INDEX tasks_claimable ON tasks.tasks (seq) "
        "WHERE status = 'pending' AND charge_state = 'charged'"
    )
    op.execute(
        "CREATE INDEX tasks_leases ON tasks.tasks (lease_expires_at) WHERE status = 'processing'"
    )
    op.execute(
        "CREATE INDEX tasks_unsettled ON tasks.tasks (updated_at) "
        "WHERE charge_state IN ('reserved', 'refunding', 'released')"
    )


def downgrade() -> None:
    op.execute("DROP TABLE tasks.tasks")
