"""Low-balance alerts, auto top-up crossings and outbound webhooks of the credit service.

- `credit.balance_watch`: a user's thresholds (low-balance alert; NULL = the plan's default, see
  services.credit.alert_rules; auto top-up, set by billing while a top-up is armed).
- `credit.alerts`: what `GET /api/users/alerts` lists.
- `credit.topup_requests`: one row per crossing of the top-up threshold, for billing to act on.
- `credit.grant_warnings`: grants already warned about (one `grant.expiring` each).
- `credit.outbox`: events for the operator's webhook endpoints (services.kit.outbox).

The crossing rule lives in a trigger on `credit.accounts` (AFTER UPDATE, only when the balance
went down), not in the charge: every writer of a balance (charge, hold, settle, expiry, void,
clawback, reset) goes through that row under its lock, so the old and new rows the trigger sees
are exact and serialized, concurrent charges produce exactly one crossing, and the alert, the
event and the top-up request commit atomically with the change that caused them without any
statement of the ledger knowing about them. `alert_rules.crossings` states the same rule in
Python; tests hold the two together.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

from services.kit.outbox import outbox_ddl

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE credit.balance_watch (
            user_id         text PRIMARY KEY REFERENCES credit.accounts (user_id),
            low_threshold   integer CHECK (low_threshold BETWEEN 0 AND 100000000),
            topup_threshold integer CHECK (topup_threshold BETWEEN 1 AND 100000000),
            updated_at      timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        """
        CREATE TABLE credit.alerts (
            id         bigserial PRIMARY KEY,
            user_id    text NOT NULL,
            kind       text NOT NULL CHECK (kind IN
                ('credits.low', 'credits.depleted', 'topup.failed', 'grant.expiring')),
            message    text NOT NULL,
            data       jsonb NOT NULL DEFAULT '{}'::jsonb,
            -- Alerts raised by other services carry their own key (a retry adds nothing).
            source_key text,
            created_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT alerts_source_unique UNIQUE (user_id, source_key)
        )
        """
    )
    op.execute("CREATE INDEX alerts_user_newest ON credit.alerts (user_id, id DESC)")
    op.execute(
        """
        CREATE TABLE credit.topup_requests (
            id         bigserial PRIMARY KEY,
            user_id    text NOT NULL,
            balance    integer NOT NULL,
            threshold  integer NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            done_at    timestamptz
        )
        """
    )
    op.execute(
        "CREATE INDEX topup_requests_open ON credit.topup_requests (id) WHERE done_at IS NULL"
    )
    op.execute(
        """
        CREATE TABLE credit.grant_warnings (
            grant_id  bigint PRIMARY KEY,
            warned_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    for statement in outbox_ddl("credit"):
        op.execute(statement)
    op.execute(
        """
        CREATE FUNCTION credit.watch_balance() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            before_total integer := OLD.allowance_balance + OLD.purchased_balance
                                    + OLD.bonus_balance;
            after_total  integer := NEW.allowance_balance + NEW.purchased_balance
                                    + NEW.bonus_balance;
            low          integer;
            topup        integer;
            kinds        text[] := '{}';
            k            text;
        BEGIN
            IF NEW.is_unlimited THEN
                RETURN NULL;
            END IF;
            SELECT w.low_threshold, w.topup_threshold INTO low, topup
            FROM credit.balance_watch w WHERE w.user_id = NEW.user_id;
            -- alert_rules.default_low_threshold: a tenth of the plan's allowance, at least 1.
            low := COALESCE(low, GREATEST(1, NEW.monthly_allowance / 10));
            IF low > 0 AND before_total >= low AND after_total < low THEN
                kinds := kinds || 'credits.low'::text;
            END IF;
            IF before_total > 0 AND after_total = 0 THEN
                kinds := kinds || 'credits.depleted'::text;
            END IF;
            FOREACH k IN ARRAY kinds LOOP
                INSERT INTO credit.alerts (user_id, kind, message, data)
                VALUES (NEW.user_id, k,
                    CASE k WHEN 'credits.low'
                        THEN format('Your balance fell below %s credits', low)
                        ELSE 'You have no credits left' END,
                    jsonb_build_object('balance', after_total, 'threshold', low));
                INSERT INTO credit.outbox (type, user_id, data)
                VALUES (k, NEW.user_id, jsonb_build_object(
                    'userId', NEW.user_id, 'balance', after_total, 'threshold', low));
            END LOOP;
            IF topup IS NOT NULL AND before_total >= topup AND after_total < topup THEN
                INSERT INTO credit.topup_requests (user_id, balance, threshold)
                VALUES (NEW.user_id, after_total, topup);
            END IF;
            RETURN NULL;
        END
        $$
        """
    )
    # Only a balance that went down can cross a threshold: raises (grants, refunds, resets) never
    # run the function at all.
    op.execute(
        """
        CREATE TRIGGER accounts_watch_balance
        AFTER UPDATE OF allowance_balance, purchased_balance, bonus_balance ON credit.accounts
        FOR EACH ROW
        WHEN (NEW.allowance_balance + NEW.purchased_balance + NEW.bonus_balance
              < OLD.allowance_balance + OLD.purchased_balance + OLD.bonus_balance)
        EXECUTE FUNCTION credit.watch_balance()
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER accounts_watch_balance ON credit.accounts")
    op.execute("DROP FUNCTION credit.watch_balance()")
    for table in ("outbox", "grant_warnings", "topup_requests", "alerts", "balance_watch"):
        op.execute(f"DROP TABLE credit.{table}")
