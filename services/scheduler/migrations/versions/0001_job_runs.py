"""Every scheduler job run, for catch-up after downtime and for operators.

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
        CREATE TABLE scheduler.job_runs (
            id          bigserial PRIMARY KEY,
            job         text NOT NULL,
            instance    text NOT NULL,
            trigger     text NOT NULL CHECK (trigger IN ('schedule', 'catch-up', 'manual')),
            started_at  timestamptz NOT NULL DEFAULT now(),
            finished_at timestamptz,
            outcome     text CHECK (outcome IN ('ok', 'error')),
            counts      jsonb NOT NULL DEFAULT '{}'::jsonb,
            error       text
        )
        """
    )
    op.execute("CREATE INDEX job_runs_latest ON scheduler.job_runs (job, started_at DESC)")


def downgrade() -> None:
    op.execute("DROP TABLE scheduler.job_runs")
