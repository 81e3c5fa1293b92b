"""Outbound webhooks of the task service: `task.completed` and `task.failed`.

The event is written by a trigger on tasks.tasks when a task's status becomes `done` or `failed`,
so it commits with that status change whichever code path makes it (a worker's report, the
scheduler giving a task up) and no statement of the lifecycle has to know about it.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

from services.kit.outbox import outbox_ddl

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in outbox_ddl("tasks"):
        op.execute(statement)
    op.execute(
        """
        CREATE FUNCTION tasks.task_finished() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO tasks.outbox (type, user_id, data)
            VALUES (
                CASE NEW.status WHEN 'done' THEN 'task.completed' ELSE 'task.failed' END,
                NEW.user_id,
                jsonb_strip_nulls(jsonb_build_object(
                    'taskId', NEW.id::text, 'userId', NEW.user_id, 'type', NEW.type,
                    'status', CASE NEW.status WHEN 'done' THEN 'completed' ELSE 'failed' END,
                    'creditsCost', NEW.credits_cost, 'error', NEW.error)));
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER tasks_finished AFTER UPDATE OF status ON tasks.tasks
        FOR EACH ROW
        WHEN (NEW.status IN ('done', 'failed') AND OLD.status IS DISTINCT FROM NEW.status)
        EXECUTE FUNCTION tasks.task_finished()
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER tasks_finished ON tasks.tasks")
    op.execute("DROP FUNCTION tasks.task_finished()")
    op.execute("DROP TABLE tasks.outbox")
