"""Plan catalog, seeded with Free, Pro and Enterprise.

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
        CREATE TABLE billing.plans (
            id              text PRIMARY KEY,
            name            text NOT NULL,
            price_cents     integer NOT NULL CHECK (price_cents >= 0),
            currency        text NOT NULL,
            billing_interval text NOT NULL,
            monthly_credits integer NOT NULL CHECK (monthly_credits >= 0),
            is_unlimited    boolean NOT NULL,
            features        text[] NOT NULL,
            sort_order      integer NOT NULL
        )
        """
    )
    op.execute(
        """
        INSERT INTO billing.plans
            (id, name, price_cents, currency, billing_interval, monthly_credits, is_unlimited,
             features, sort_order)
        VALUES
            ('free', 'Free', 0, 'usd', 'month', 10, false,
             ARRAY['image_analysis', 'video_generation'], 1),
            ('pro', 'Pro', 1999, 'usd', 'month', 100, false,
             ARRAY['image_analysis', 'video_generation', 'advanced_editing'], 2),
            ('enterprise', 'Enterprise', 9999, 'usd', 'month', 0, true,
             ARRAY['image_analysis', 'video_generation', 'advanced_editing'], 3)
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE billing.plans")
