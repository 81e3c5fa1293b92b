"""Pricing by usage: what a task reserved, what its worker measured, what went uncharged above the
reservation, and the charge states of settling a reservation (settling: done, the ledger owes the
settlement; settled).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE tasks.tasks
            ADD COLUMN credits_reserved integer,
            ADD COLUMN usage jsonb,
            ADD COLUMN credits_uncharged integer NOT NULL DEFAULT 0
                CHECK (credits_uncharged >= 0),
            DROP CONSTRAINT tasks_charge_state_check,
            ADD CONSTRAINT tasks_charge_state_check CHECK (charge_state IN
                ('reserved', 'charged', 'refunding', 'refunded', 'released', 'settling',
                 'settled'))
        """
    )
    # NULL for tasks created before (no rewrite of the table): they were charged their flat price,
    # which is their reservation (services.task.store reads NULL as credits_cost).
    op.execute(
        "ALTER TABLE tasks.tasks ADD CONSTRAINT tasks_cost_within_reservation "
        "CHECK (credits_cost <= credits_reserved)"
    )
    op.execute("DROP INDEX tasks.tasks_unsettled")
    op.execute(
        "CREATE INDEX tasks_unsettled ON tasks.tasks (updated_at) "
        "WHERE charge_state IN ('reserved', 'refunding', 'released', 'settling')"
    )


def downgrade() -> None:
    op.execute("DROP INDEX tasks.tasks_unsettled")
    op.execute(
        "CREATE INDEX tasks_unsettled ON tasks.tasks (updated_at) "
        "WHERE charge_state IN ('reserved', 'refunding', 'released')"
    )
    op.execute(
        """
        ALTER TABLE tasks.tasks
            DROP CONSTRAINT tasks_cost_within_reservation,
            DROP CONSTRAINT tasks_charge_state_check,
            ADD CONSTRAINT tasks_charge_state_check CHECK (charge_state IN
                ('reserved', 'charged', 'refunding', 'refunded', 'released')),
            DROP COLUMN credits_uncharged,
            DROP COLUMN usage,
            DROP COLUMN credits_reserved
        """
    )
