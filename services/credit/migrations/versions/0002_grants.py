"""Credits as grants: blocks with a category, priority, effective time and optional expiry, each
entry's per-grant changes (postings), what an account owes, and who did what (actor, reason).

Existing accounts are converted without changing any balance: the allowance bucket becomes one open
allowance grant, and the purchased bucket is spread over one grant per purchase (so a later refund
or dispute of that payment finds its own grant), the newest purchases keeping their credits (the
oldest were spent first). What a grant started with here is `carried`, so a grant's remaining
always equals carried + the sum of its postings.

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
        ALTER TABLE credit.accounts
            -- Promotional and compensation credits (the other categories have their own column).
            ADD COLUMN bonus_balance integer NOT NULL DEFAULT 0 CHECK (bonus_balance >= 0),
            -- Credits Stripe took back that the balance could not cover; settled from later grants.
            ADD COLUMN owed integer NOT NULL DEFAULT 0 CHECK (owed >= 0)
        """
    )
    op.execute(
        """
        CREATE TABLE credit.grants (
            id            bigserial PRIMARY KEY,
            user_id       text NOT NULL REFERENCES credit.accounts (user_id),
            category      text NOT NULL
                CHECK (category IN ('allowance', 'purchased', 'promotional', 'compensation')),
            amount        integer NOT NULL CHECK (amount >= 0),
            remaining     integer NOT NULL CHECK (remaining >= 0),
            priority      integer NOT NULL CHECK (priority BETWEEN 0 AND 1000),
            effective_at  timestamptz NOT NULL DEFAULT now(),
            -- NULL: never (the allowance is closed by the monthly reset instead).
            expires_at    timestamptz,
            -- Set by the entry that expired or voided it (remaining is 0 from then on).
            closed_at     timestamptz,
            closed_reason text CHECK (closed_reason IN ('expired', 'voided', 'reset')),
            -- Idempotency key of the entry that created it (a purchase's stripe:… key).
            source_key    text NOT NULL,
            reference     text NOT NULL DEFAULT '',
            -- Credits taken back for this grant's payment (Stripe refunds and disputes).
            clawed        integer NOT NULL DEFAULT 0 CHECK (clawed BETWEEN 0 AND amount),
            -- Credits it started with when the bucket ledger was converted (0 for later grants).
            carried       integer NOT NULL DEFAULT 0 CHECK (carried >= 0),
            created_at    timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT grants_source_unique UNIQUE (user_id, source_key),
            CONSTRAINT grants_closed_empty CHECK (closed_at IS NULL OR remaining = 0)
        )
        """
    )
    # The charge's order within an account; open grants only.
    op.execute(
        "CREATE INDEX grants_open ON credit.grants (user_id, priority, expires_at, effective_at, id)"
        " WHERE closed_at IS NULL"
    )
    # The expiry job's batches, in expiry order.
    op.execute(
        "CREATE INDEX grants_expiring ON credit.grants (expires_at)"
        " WHERE closed_at IS NULL AND expires_at IS NOT NULL"
    )
    op.execute(
        """
        ALTER TABLE credit.entries
            ADD COLUMN bonus_delta integer NOT NULL DEFAULT 0,
            ADD COLUMN owed_delta integer NOT NULL DEFAULT 0,
            -- Who asked for it ('' for the system; 'admin:<user>' or 'cli:<name>' for support).
            ADD COLUMN actor text NOT NULL DEFAULT '',
            ADD COLUMN reason text NOT NULL DEFAULT '',
            DROP CONSTRAINT entries_kind_check,
            ADD CONSTRAINT entries_kind_check CHECK (kind IN
                ('grant', 'charge', 'refund', 'expiry', 'void', 'clawback', 'reinstate')),
            DROP CONSTRAINT entries_amount_parts,
            ADD CONSTRAINT entries_amount_parts
                CHECK (amount = allowance_delta + purchased_delta + bonus_delta)
        """
    )
    op.execute(
        """
        CREATE TABLE credit.postings (
            -- No foreign keys: a posting is written only in the statement or transaction that
            -- writes its entry (and grant), and the keys' row locks were a third of a reset or
            -- expiry batch. VerifyLedger reports any posting without its entry or grant.
            entry_id bigint NOT NULL,
            grant_id bigint NOT NULL,
            delta    integer NOT NULL,
            PRIMARY KEY (entry_id, grant_id)
        )
        """
    )
    # No index by grant: only VerifyLedger reads postings by grant, and it reads them all.
    # Where each refunded credit came from: the grant the charge took it from (it may have gone
    # back to another grant when that one had closed), or only its category for a charge made
    # before grants existed. What is left of a charge is counted per source.
    op.execute(
        """
        CREATE TABLE credit.refund_shares (
            refund_id  bigint NOT NULL REFERENCES credit.entries (id),
            charge_id  bigint NOT NULL REFERENCES credit.entries (id),
            from_grant bigint REFERENCES credit.grants (id),
            category   text NOT NULL,
            back       integer NOT NULL CHECK (back > 0)
        )
        """
    )
    op.execute("CREATE INDEX refund_shares_charge ON credit.refund_shares (charge_id)")

    # --- existing accounts ---
    # The allowance bucket: one open allowance grant (created by the latest allowance grant entry).
    op.execute(
        """
        INSERT INTO credit.grants (user_id, category, amount, remaining, carried, priority,
            effective_at, source_key, created_at)
        SELECT a.user_id, 'allowance', a.allowance_balance, a.allowance_balance,
               a.allowance_balance, 20, a.period_started_at, 'migrated:allowance', now()
        FROM credit.accounts a
        WHERE a.allowance_balance > 0
        """
    )
    # The purchased bucket: one grant per purchase, newest purchases keeping the credits.
    op.execute(
        """
        INSERT INTO credit.grants (user_id, category, amount, remaining, carried, priority,
            effective_at, source_key, reference, created_at)
        SELECT p.user_id, 'purchased', p.amount, p.keep, p.keep, 40, p.created_at,
               p.idempotency_key, p.reference, p.created_at
        FROM (
            SELECT e.user_id, e.purchased_delta AS amount, e.created_at, e.idempotency_key,
                   e.reference,
                   GREATEST(0, LEAST(e.purchased_delta, a.purchased_balance - COALESCE(
                       sum(e.purchased_delta) OVER (
                           PARTITION BY e.user_id ORDER BY e.id DESC
                           ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0))) AS keep
            FROM credit.entries e
            JOIN credit.accounts a USING (user_id)
            WHERE e.kind = 'grant' AND e.purchased_delta > 0
        ) p
        """
    )
    # Purchased credits no purchase explains (none in practice): one grant, so nothing is lost.
    op.execute(
        """
        INSERT INTO credit.grants (user_id, category, amount, remaining, carried, priority,
            source_key)
        SELECT a.user_id, 'purchased', a.purchased_balance - g.kept, a.purchased_balance - g.kept,
               a.purchased_balance - g.kept, 40, 'migrated:purchased'
        FROM credit.accounts a
        JOIN LATERAL (
            SELECT COALESCE(sum(remaining), 0) AS kept FROM credit.grants
            WHERE user_id = a.user_id AND category = 'purchased'
        ) g ON true
        WHERE a.purchased_balance > g.kept
        """
    )


def downgrade() -> None:
    # Back to two buckets: promotional and compensation credits have no bucket there.
    op.execute(
        "UPDATE credit.entries SET purchased_delta = purchased_delta + bonus_delta, bonus_delta = 0"
    )
    op.execute(
        """
        UPDATE credit.entries SET kind = CASE kind WHEN 'reinstate' THEN 'grant' ELSE 'expiry' END
        WHERE kind IN ('void', 'clawback', 'reinstate')
        """
    )
    op.execute("DROP TABLE credit.refund_shares")
    op.execute("DROP TABLE credit.postings")
    op.execute("DROP TABLE credit.grants")
    op.execute(
        """
        ALTER TABLE credit.entries
            DROP CONSTRAINT entries_amount_parts,
            ADD CONSTRAINT entries_amount_parts CHECK (amount = allowance_delta + purchased_delta),
            DROP CONSTRAINT entries_kind_check,
            ADD CONSTRAINT entries_kind_check
                CHECK (kind IN ('grant', 'charge', 'refund', 'expiry')),
            DROP COLUMN bonus_delta, DROP COLUMN owed_delta, DROP COLUMN actor,
            DROP COLUMN reason
        """
    )
    op.execute("UPDATE credit.accounts SET purchased_balance = purchased_balance + bonus_balance")
    op.execute("ALTER TABLE credit.accounts DROP COLUMN bonus_balance, DROP COLUMN owed")
