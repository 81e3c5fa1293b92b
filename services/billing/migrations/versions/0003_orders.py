"""Orders (every payment or plan change this system started at Stripe, with the facts a grant is
checked against), what billing placed on the credit account (paid or not, from which subscription),
the subscription mirror's customer, refunded payments, and each webhook event's outcome.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE billing.orders (
            -- Our reference, also in the Stripe object's metadata (studiox_order).
            ref          text PRIMARY KEY,
            -- '<purchase|plan>:<hash of user and Idempotency-Key>', or unique per request.
            request_key  text NOT NULL UNIQUE,
            user_id      text NOT NULL,
            customer_id  text NOT NULL,
            kind         text NOT NULL CHECK (kind IN ('credits', 'plan')),
            action       text NOT NULL
                CHECK (action IN ('checkout', 'intent', 'update', 'cancel', 'resume')),
            pack_id      text,
            plan_id      text,
            credits      integer NOT NULL DEFAULT 0 CHECK (credits >= 0),
            amount_cents integer NOT NULL DEFAULT 0 CHECK (amount_cents >= 0),
            currency     text NOT NULL,
            -- The Checkout Session, PaymentIntent or subscription it started (once Stripe answers).
            stripe_id    text,
            created_at   timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    # One Stripe object is one credit purchase, so it can be granted once, to one user.
    op.execute(
        "CREATE UNIQUE INDEX orders_credit_object ON billing.orders (stripe_id) "
        "WHERE kind = 'credits'"
    )
    op.execute("CREATE INDEX orders_object ON billing.orders (stripe_id)")
    # Purchases started before orders existed: their history rows, where they match the catalog.
    op.execute(
        """
        INSERT INTO billing.orders (ref, request_key, user_id, customer_id, kind, action, pack_id,
            credits, amount_cents, currency, stripe_id, created_at)
        SELECT 'legacy_' || p.id, 'legacy:' || p.stripe_id, p.user_id, c.stripe_customer_id,
               'credits', CASE WHEN p.stripe_id LIKE 'pi\\_%' THEN 'intent' ELSE 'checkout' END,
               p.pack_id, p.credits, p.amount_cents, p.currency, p.stripe_id, p.created_at
        FROM billing.payments p
        JOIN billing.customers c ON c.user_id = p.user_id
        JOIN billing.credit_packs k ON k.id = p.pack_id AND k.credits = p.credits
            AND k.price_cents = p.amount_cents AND k.currency = p.currency
        WHERE p.kind = 'credits'
        """
    )
    op.execute(
        """
        ALTER TABLE billing.customers
            -- Whether the placed period's invoice was paid (an unpaid one has no allowance).
            ADD COLUMN plan_paid boolean NOT NULL DEFAULT true,
            ADD COLUMN plan_subscription_id text
        """
    )
    op.execute("ALTER TABLE billing.subscriptions ADD COLUMN customer_id text")
    op.execute(
        """
        ALTER TABLE billing.payments DROP CONSTRAINT payments_status_check,
            ADD CONSTRAINT payments_status_check CHECK (status IN
                ('pending', 'succeeded', 'failed', 'expired', 'canceled', 'refunded'))
        """
    )
    op.execute(
        "ALTER TABLE billing.webhook_events ADD COLUMN outcome text NOT NULL DEFAULT 'processed'"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE billing.webhook_events DROP COLUMN outcome")
    op.execute("UPDATE billing.payments SET status = 'succeeded' WHERE status = 'refunded'")
    op.execute(
        """
        ALTER TABLE billing.payments DROP CONSTRAINT payments_status_check,
            ADD CONSTRAINT payments_status_check CHECK (status IN
                ('pending', 'succeeded', 'failed', 'expired', 'canceled'))
        """
    )
    op.execute("ALTER TABLE billing.subscriptions DROP COLUMN customer_id")
    op.execute(
        "ALTER TABLE billing.customers DROP COLUMN plan_paid, DROP COLUMN plan_subscription_id"
    )
    op.execute("DROP TABLE billing.orders")
