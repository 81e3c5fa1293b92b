"""Credit packs (seeded), Stripe customers, subscriptions mirrored from Stripe, payments, and the
webhook events already processed.

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
        CREATE TABLE billing.credit_packs (
            id          text PRIMARY KEY,
            name        text NOT NULL,
            credits     integer NOT NULL UNIQUE CHECK (credits > 0),
            price_cents integer NOT NULL CHECK (price_cents > 0),
            currency    text NOT NULL,
            sort_order  integer NOT NULL
        )
        """
    )
    op.execute(
        """
        INSERT INTO billing.credit_packs (id, name, credits, price_cents, currency, sort_order)
        VALUES
            ('credits_10', '10 credits', 10, 500, 'usd', 1),
            ('credits_50', '50 credits', 50, 2000, 'usd', 2),
            ('credits_100', '100 credits', 100, 3500, 'usd', 3),
            ('credits_500', '500 credits', 500, 15000, 'usd', 4)
        """
    )
    op.execute(
        """
        CREATE TABLE billing.customers (
            user_id            text PRIMARY KEY,
            stripe_customer_id text NOT NULL UNIQUE,
            -- The plan last placed on the credit account from Stripe's subscription state
            -- (NULL: never; the account is on whatever sign-up gave it, i.e. Free).
            plan_id            text,
            plan_period_start  timestamptz,
            plan_changes       integer NOT NULL DEFAULT 0,
            created_at         timestamptz NOT NULL DEFAULT now(),
            updated_at         timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        """
        CREATE TABLE billing.subscriptions (
            id                   text PRIMARY KEY,
            user_id              text NOT NULL,
            plan_id              text,
            price_id             text,
            status               text NOT NULL,
            cancel_at_period_end boolean NOT NULL DEFAULT false,
            current_period_start timestamptz,
            current_period_end   timestamptz,
            updated_at           timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE INDEX subscriptions_user ON billing.subscriptions (user_id)")
    op.execute(
        """
        CREATE TABLE billing.payments (
            id           bigserial PRIMARY KEY,
            user_id      text NOT NULL,
            -- Checkout Session, PaymentIntent or Invoice id.
            stripe_id    text NOT NULL UNIQUE,
            kind         text NOT NULL CHECK (kind IN ('credits', 'subscription')),
            status       text NOT NULL
                CHECK (status IN ('pending', 'succeeded', 'failed', 'expired', 'canceled')),
            amount_cents integer NOT NULL CHECK (amount_cents >= 0),
            currency     text NOT NULL,
            credits      integer NOT NULL DEFAULT 0 CHECK (credits >= 0),
            pack_id      text,
            plan_id      text,
            -- Ledger key of the credit grant (kind 'credits'), one per session or intent.
            grant_key    text,
            created_at   timestamptz NOT NULL DEFAULT now(),
            updated_at   timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute("CREATE INDEX payments_user_newest ON billing.payments (user_id, id DESC)")
    op.execute(
        """
        CREATE TABLE billing.webhook_events (
            id           text PRIMARY KEY,
            type         text NOT NULL,
            created      timestamptz NOT NULL,
            processed_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE billing.webhook_events")
    op.execute("DROP TABLE billing.payments")
    op.execute("DROP TABLE billing.subscriptions")
    op.execute("DROP TABLE billing.customers")
    op.execute("DROP TABLE billing.credit_packs")
