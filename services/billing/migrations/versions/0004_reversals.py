"""Money Stripe took back from a credit purchase: refunded amount, dispute state, the credits
clawed back for it, and the PaymentIntent behind a Checkout Session (to find the purchase a
refund or dispute names).

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
        """
        ALTER TABLE billing.payments
            ADD COLUMN refunded_cents integer NOT NULL DEFAULT 0 CHECK (refunded_cents >= 0),
            -- Stripe's status of the latest dispute (needs_response, under_review, won, lost...).
            ADD COLUMN dispute_status text,
            ADD COLUMN clawed_credits integer NOT NULL DEFAULT 0 CHECK (clawed_credits >= 0)
        """
    )


def downgrade() -> None:
    op.execute(
        "ALTER TABLE billing.payments DROP COLUMN refunded_cents, DROP COLUMN dispute_status, "
        "DROP COLUMN clawed_credits"
    )
