"""Credit accounts and the append-only ledger.

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
        CREATE TABLE credit.accounts (
            user_id           text PRIMARY KEY,
            plan_name         text NOT NULL,
            monthly_allowance integer NOT NULL CHECK (monthly_allowance >= 0),
            is_unlimited      boolean NOT NULL,
            features          text[] NOT NULL,
            allowance_balance integer NOT NULL CHECK (allowance_balance >= 0),
            purchased_balance integer NOT NULL CHECK (purchased_balance >= 0),
            used_this_period  integer NOT NULL DEFAULT 0 CHECK (used_this_period >= 0),
            -- Reset dates are reset_anchor + n calendar months, so a 31st never drifts to the 28th.
            reset_anchor      timestamptz NOT NULL,
            period_started_at timestamptz NOT NULL,
            credit_reset_at   timestamptz NOT NULL,
            created_at        timestamptz NOT NULL DEFAULT now(),
            updated_at        timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE INDEX accounts_reset_due ON credit.accounts (credit_reset_at)")
    op.execute(
        """
        CREATE TABLE credit.entries (
            id               bigserial PRIMARY KEY,
            user_id          text NOT NULL REFERENCES credit.accounts (user_id),
            kind             text NOT NULL CHECK (kind IN ('grant', 'charge', 'refund', 'expiry')),
            idempotency_key  text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 200),
            amount           integer NOT NULL,
            allowance_delta  integer NOT NULL,
            purchased_delta  integer NOT NULL,
            usage            integer NOT NULL DEFAULT 0,
            reference        text NOT NULL DEFAULT '',
            description      text NOT NULL DEFAULT '',
            refund_of        bigint REFERENCES credit.entries (id),
            balance_after    integer NOT NULL CHECK (balance_after >= 0),
            created_at       timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT entries_key_unique UNIQUE (user_id, idempotency_key),
            CONSTRAINT entries_amount_parts CHECK (amount = allowance_delta + purchased_delta),
            CONSTRAINT entries_refund_has_charge CHECK ((kind = 'refund') = (refund_of IS NOT NULL))
        )
        """
    )
    op.execute("CREATE INDEX entries_user_newest ON credit.entries (user_id, id DESC)")
    op.execute(
        "CREATE INDEX entries_refund_of ON credit.entries (refund_of) WHERE refund_of IS NOT NULL"
    )


def downgrade() -> None:
    op.execute("DROP TABLE credit.entries")
    op.execute("DROP TABLE credit.accounts")
