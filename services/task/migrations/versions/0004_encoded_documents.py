"""Each JSON document of a task also in protobuf's wire encoding, for list pages.

`input_pb`, `output_pb` and `usage_pb` hold `input_data`, `output_data` and `usage` as the fields
of studiox.task.v1.Task (services/task/documents.py); the store writes each with its document, in
the same statement. A list page merges the stored bytes into its reply instead of decoding JSON and
building Structs for every task (docs/PERFORMANCE.md, phase 3). NULL means "not encoded": rows
from before this revision, and rows written by anything but the store, are read from the jsonb
columns as before. A write that changes a document without its encoding (hand-written SQL, a
future statement that forgets it) makes the encoding NULL in the same statement (the trigger), so
a page never shows a stale document.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE tasks.tasks ADD COLUMN input_pb bytea, ADD COLUMN output_pb bytea, "
        "ADD COLUMN usage_pb bytea"
    )
    op.execute(
        """
        CREATE FUNCTION tasks.forget_stale_encodings() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.input_data IS DISTINCT FROM OLD.input_data
               AND NEW.input_pb IS NOT DISTINCT FROM OLD.input_pb THEN
                NEW.input_pb := NULL;
            END IF;
            IF NEW.output_data IS DISTINCT FROM OLD.output_data
               AND NEW.output_pb IS NOT DISTINCT FROM OLD.output_pb THEN
                NEW.output_pb := NULL;
            END IF;
            IF NEW.usage IS DISTINCT FROM OLD.usage
               AND NEW.usage_pb IS NOT DISTINCT FROM OLD.usage_pb THEN
                NEW.usage_pb := NULL;
            END IF;
            RETURN NEW;
        END
        $$
        """
    )
    # Only statements that set a document fire it (not the create's charge mark, not a lease).
    op.execute(
        "CREATE TRIGGER tasks_forget_stale_encodings "
        "BEFORE UPDATE OF input_data, output_data, usage ON tasks.tasks "
        "FOR EACH ROW EXECUTE FUNCTION tasks.forget_stale_encodings()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER tasks_forget_stale_encodings ON tasks.tasks")
    op.execute("DROP FUNCTION tasks.forget_stale_encodings()")
    op.execute(
        "ALTER TABLE tasks.tasks DROP COLUMN input_pb, DROP COLUMN output_pb, DROP COLUMN usage_pb"
    )
