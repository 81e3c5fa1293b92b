"""Credit accounts seeded set-based in SQL, each with a consistent ledger (grant entries and their
postings), for expiry at scale: integration-sized in tests, a million in the bench."""

from __future__ import annotations

import psycopg


def seed_expiring(url: str, *, prefix: str, count: int) -> int:
    """`count` accounts, each with one promotional grant of 1..7 credits that expired within the
    last ~17 minutes (not yet expired by the ledger) and an open allowance of 10 that stays. The
    ledger verifies before and after. Returns the promotional credits seeded."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            """
            INSERT INTO credit.accounts (user_id, plan_name, monthly_allowance, is_unlimited,
                features, allowance_balance, purchased_balance, bonus_balance, reset_anchor,
                period_started_at, credit_reset_at)
            SELECT %(prefix)s || g, 'free', 10, false, ARRAY['image_analysis'], 10, 0,
                   g %% 7 + 1, now() - interval '3 days', now() - interval '3 days',
                   now() + interval '27 days'
            FROM generate_series(1, %(count)s) g
            """,
            {"prefix": prefix, "count": count},
        )
        conn.execute(
            """
            INSERT INTO credit.grants (user_id, category, amount, remaining, priority,
                effective_at, expires_at, source_key)
            SELECT user_id, 'allowance', 10, 10, 20, period_started_at, NULL, 'seed:allowance'
            FROM credit.accounts WHERE left(user_id, length(%(prefix)s)) = %(prefix)s
            UNION ALL
            SELECT user_id, 'promotional', bonus_balance, bonus_balance, 10,
                   now() - interval '2 days',
                   now() - (hashtext(user_id) & 1023) * interval '1 second', 'seed:promo'
            FROM credit.accounts WHERE left(user_id, length(%(prefix)s)) = %(prefix)s
            """,
            {"prefix": prefix},
        )
        conn.execute(
            """
            INSERT INTO credit.entries (user_id, kind, idempotency_key, amount, allowance_delta,
                purchased_delta, bonus_delta, description, balance_after)
            SELECT g.user_id, 'grant', g.source_key, g.amount,
                   CASE WHEN g.category = 'allowance' THEN g.amount ELSE 0 END, 0,
                   CASE WHEN g.category = 'allowance' THEN 0 ELSE g.amount END, 'seed',
                   CASE WHEN g.category = 'allowance' THEN 10 ELSE 10 + g.amount END
            FROM credit.grants g WHERE left(g.user_id, length(%(prefix)s)) = %(prefix)s
            """,
            {"prefix": prefix},
        )
        conn.execute(
            """
            INSERT INTO credit.postings (entry_id, grant_id, delta)
            SELECT e.id, g.id, g.amount
            FROM credit.grants g
            JOIN credit.entries e ON e.user_id = g.user_id AND e.idempotency_key = g.source_key
            WHERE left(g.user_id, length(%(prefix)s)) = %(prefix)s
            """,
            {"prefix": prefix},
        )
        row = conn.execute(
            "SELECT sum(bonus_balance) FROM credit.accounts "
            "WHERE left(user_id, length(%(prefix)s)) = %(prefix)s",
            {"prefix": prefix},
        ).fetchone()
        assert row is not None
        return int(row[0])
