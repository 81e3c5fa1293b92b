"""Set-based batches over every account (schema `credit`): the monthly reset, grant expiry, and
the ledger's verification.

Why these rules are in SQL and not in Python: a batch handles thousands of accounts in one
statement (one round trip, one atomic step per batch, SKIP LOCKED keeping concurrent batches
disjoint), which a per-account loop in Python cannot do at a million accounts (docs/PERFORMANCE.md).
The Python statements of the same rules are `domain.period_containing` (a reset's new period),
`Grant.is_live` (which grants have lapsed) and `domain.ledger_differences` (what verification
reports); tests/integration/test_credit_reset.py and test_credit_expiry_rule.py hold the SQL to
them on random inputs. Every batch locks accounts first, as every other writer does (store.py).
"""

from __future__ import annotations

from datetime import datetime

from services.credit.domain import BucketSums, LedgerDifference, ledger_differences
from services.kit.sql import Connection, text

# --- the monthly reset: set-based batches ---

_RESET_DUE = text(
    """
    WITH due AS MATERIALIZED (
        SELECT user_id, allowance_balance, purchased_balance, bonus_balance, owed,
               monthly_allowance, is_unlimited, reset_anchor,
               (date_part('year', age(:as_of, reset_anchor)) * 12
                + date_part('month', age(:as_of, reset_anchor)))::int AS m
        FROM credit.accounts
        WHERE credit_reset_at <= :as_of
        -- Index order (accounts_reset_due): each batch reads only due rows, never re-sorts them.
        ORDER BY credit_reset_at
        LIMIT :batch
        FOR UPDATE SKIP LOCKED
    ), periods AS MATERIALIZED (
        -- the period of the anchor's monthly schedule that contains as_of (catches up missed ones)
        SELECT d.*,
               CASE WHEN d.reset_anchor + make_interval(months => d.m + 1) > :as_of
                    THEN d.reset_anchor + make_interval(months => d.m)
                    ELSE d.reset_anchor + make_interval(months => d.m + 1) END AS new_start,
               CASE WHEN d.reset_anchor + make_interval(months => d.m + 1) > :as_of
                    THEN d.reset_anchor + make_interval(months => d.m + 1)
                    ELSE d.reset_anchor + make_interval(months => d.m + 2) END AS new_reset,
               CASE WHEN d.is_unlimited THEN 0 ELSE d.monthly_allowance END AS fresh,
               -- Ids drawn up front, so entries, grants and postings need no join to find them.
               nextval('credit.entries_id_seq') AS expiry_entry
        -- User order from here on, and the ids are drawn in it. Every index the batch writes
        -- (the reset time's aside) and every foreign-key lookup is keyed by user or by id, so
        -- consecutive rows land on neighbouring pages rather than anywhere in them (the bench's
        -- million accounts in 0.8 of the time: docs/PERFORMANCE.md, Phase 3, item 22).
        FROM (SELECT * FROM due ORDER BY user_id) d
    ), calc AS MATERIALIZED (
        SELECT p.*, LEAST(p.owed, p.fresh) AS settle,
               nextval('credit.entries_id_seq') AS grant_entry,
               nextval('credit.grants_id_seq') AS fresh_grant
        FROM periods p
    ), old AS MATERIALIZED (
        -- The period's allowance grants (every open one: the allowance lives until a reset).
        SELECT g.id, g.remaining, c.expiry_entry
        FROM calc c
        JOIN credit.grants g ON g.user_id = c.user_id
        WHERE g.closed_at IS NULL AND g.category = 'allowance'
    ), closed AS (
        UPDATE credit.grants g SET remaining = 0, closed_at = now(), closed_reason = 'reset'
        WHERE g.id = ANY (ARRAY(SELECT id FROM old))
    ), fresh_grants AS (
        INSERT INTO credit.grants (id, user_id, category, amount, remaining, priority,
                                   effective_at, source_key)
        SELECT fresh_grant, user_id, 'allowance', fresh, fresh - settle, 20, new_start,
               'reset:' || to_char(new_start, 'YYYY-MM-DD"T"HH24:MI:SS') || ':' || 'grant'
        FROM calc WHERE fresh > 0
    ), entries AS (
        INSERT INTO credit.entries (id, user_id, kind, idempotency_key, amount, allowance_delta,
                                    purchased_delta, owed_delta, description, balance_after)
        SELECT id, user_id, kind,
               'reset:' || to_char(new_start, 'YYYY-MM-DD"T"HH24:MI:SS') || ':' || kind,
               amount, amount, 0, owed_delta, description, balance_after
        FROM (
            SELECT expiry_entry AS id, user_id, new_start, 'expiry' AS kind,
                   -allowance_balance AS amount, 0 AS owed_delta,
                   'Unused allowance expired' AS description,
                   purchased_balance + bonus_balance AS balance_after
            FROM calc WHERE allowance_balance > 0
            UNION ALL
            SELECT grant_entry, user_id, new_start, 'grant', fresh - settle, -settle,
                   'Monthly allowance', purchased_balance + bonus_balance + fresh - settle
            FROM calc WHERE fresh > 0
        ) x
        ORDER BY id
    ), posted AS (
        INSERT INTO credit.postings (entry_id, grant_id, delta)
        SELECT expiry_entry, id, -remaining FROM old WHERE remaining > 0
        UNION ALL
        SELECT grant_entry, fresh_grant, fresh - settle FROM calc WHERE fresh > 0
    )
    UPDATE credit.accounts a
    SET allowance_balance = c.fresh - c.settle, owed = c.owed - c.settle, used_this_period = 0,
        period_started_at = c.new_start, credit_reset_at = c.new_reset, updated_at = now()
    FROM calc c
    WHERE a.user_id = c.user_id
    """
)


async def reset_due(conn: Connection, *, as_of: datetime, batch_size: int) -> tuple[int, bool]:
    """One batch, in the caller's transaction; returns (accounts reset, whether more are due)."""
    # The batch touches a few thousand accounts and grants by key (the statement joins nothing
    # but by index); without this the planner prefers hashing the whole accounts table for every
    # batch, which dominates at a million accounts.
    await conn.execute(text("SET LOCAL enable_hashjoin = off"))
    await conn.execute(text("SET LOCAL enable_mergejoin = off"))
    result = await conn.execute(_RESET_DUE, {"as_of": as_of, "batch": batch_size})
    more = (
        await conn.execute(
            text("SELECT EXISTS (SELECT 1 FROM credit.accounts WHERE credit_reset_at <= :as_of)"),
            {"as_of": as_of},
        )
    ).scalar_one()
    return int(result.rowcount), bool(more)


# --- grant expiry: set-based batches ---

_EXPIRE_DUE = text(
    """
    WITH due AS MATERIALIZED (
        -- Index order (grants_expiring); SKIP LOCKED keeps concurrent batches disjoint.
        SELECT id, user_id, category, remaining
        FROM credit.grants
        WHERE closed_at IS NULL AND expires_at IS NOT NULL AND expires_at <= :as_of
        ORDER BY expires_at
        LIMIT :batch
        FOR UPDATE SKIP LOCKED
    ), locked AS MATERIALIZED (
        -- The accounts too (every writer of grants holds its account): one busy with a charge is
        -- left to the next batch rather than waited for.
        SELECT user_id, allowance_balance + purchased_balance + bonus_balance AS balance
        FROM credit.accounts
        WHERE user_id = ANY (ARRAY(SELECT DISTINCT user_id FROM due))
        FOR UPDATE SKIP LOCKED
    ), lapsed AS MATERIALIZED (
        -- Locked grants are current: every writer of a grant holds its account's lock.
        SELECT d.id, d.user_id, d.category, d.remaining
        FROM due d JOIN locked l USING (user_id)
    ), closed AS (
        UPDATE credit.grants g SET remaining = 0, closed_at = now(), closed_reason = 'expired'
        WHERE g.id = ANY (ARRAY(SELECT id FROM lapsed))
    ), per_account AS MATERIALIZED (
        SELECT user_id, min(id) AS first_grant,
               COALESCE(sum(remaining) FILTER (WHERE category = 'allowance'), 0) AS ea,
               COALESCE(sum(remaining) FILTER (WHERE category = 'purchased'), 0) AS ep,
               COALESCE(sum(remaining) FILTER (
                   WHERE category IN ('promotional', 'compensation')), 0) AS eb
        FROM lapsed
        GROUP BY user_id
        HAVING sum(remaining) > 0
    ), entries AS (
        INSERT INTO credit.entries (user_id, kind, idempotency_key, amount, allowance_delta,
                                    purchased_delta, bonus_delta, description, balance_after)
        SELECT p.user_id, 'expiry', 'expiry:grant:' || p.first_grant, -(p.ea + p.ep + p.eb),
               -p.ea, -p.ep, -p.eb, 'Credits expired', b.balance - (p.ea + p.ep + p.eb)
        FROM per_account p JOIN locked b USING (user_id)
        ORDER BY p.user_id
        RETURNING id, user_id
    ), posted AS (
        INSERT INTO credit.postings (entry_id, grant_id, delta)
        SELECT e.id, l.id, -l.remaining
        FROM entries e JOIN lapsed l USING (user_id)
        WHERE l.remaining > 0
    ), updated AS (
        UPDATE credit.accounts a
        SET allowance_balance = a.allowance_balance - p.ea,
            purchased_balance = a.purchased_balance - p.ep,
            bonus_balance = a.bonus_balance - p.eb,
            updated_at = now()
        FROM per_account p
        WHERE a.user_id = p.user_id
    )
    SELECT (SELECT count(*) FROM lapsed) AS grants, (SELECT count(*) FROM per_account) AS accounts,
           (SELECT count(*) FROM due) AS due
    """
)


async def expire_due(
    conn: Connection, *, as_of: datetime, batch_size: int
) -> tuple[int, int, bool]:
    """One batch, in the caller's transaction: (grants closed, accounts with credits expired,
    whether more may be due). A batch that found fewer due grants than it could take was the last:
    grants it skipped (their account busy with a charge, or in another batch) are another batch's
    or the next run's, and are never spent meanwhile."""
    grants, accounts, due = (
        await conn.execute(_EXPIRE_DUE, {"as_of": as_of, "batch": batch_size})
    ).one()
    return int(grants), int(accounts), int(due) >= batch_size


# --- verification ---

_VERIFY_ACCOUNTS = text(
    """
    SELECT a.user_id, a.allowance_balance, a.purchased_balance, a.bonus_balance, a.owed,
           COALESCE(e.sa, 0), COALESCE(e.sp, 0), COALESCE(e.sb, 0), COALESCE(e.so, 0),
           COALESCE(g.ga, 0), COALESCE(g.gp, 0), COALESCE(g.gb, 0)
    FROM credit.accounts a
    LEFT JOIN (
        SELECT user_id, sum(allowance_delta) AS sa, sum(purchased_delta) AS sp,
               sum(bonus_delta) AS sb, sum(owed_delta) AS so
        FROM credit.entries GROUP BY user_id
    ) e USING (user_id)
    LEFT JOIN (
        SELECT user_id,
               sum(remaining) FILTER (WHERE category = 'allowance') AS ga,
               sum(remaining) FILTER (WHERE category = 'purchased') AS gp,
               sum(remaining) FILTER (WHERE category IN ('promotional', 'compensation')) AS gb
        FROM credit.grants WHERE closed_at IS NULL GROUP BY user_id
    ) g USING (user_id)
    WHERE a.allowance_balance <> COALESCE(e.sa, 0) OR a.purchased_balance <> COALESCE(e.sp, 0)
       OR a.bonus_balance <> COALESCE(e.sb, 0) OR a.owed <> COALESCE(e.so, 0)
       OR a.allowance_balance <> COALESCE(g.ga, 0) OR a.purchased_balance <> COALESCE(g.gp, 0)
       OR a.bonus_balance <> COALESCE(g.gb, 0)
       OR a.allowance_balance < 0 OR a.purchased_balance < 0 OR a.bonus_balance < 0
    ORDER BY a.user_id
    """
)
# A grant holds what it carried over from the bucket ledger plus its postings; an entry with
# postings changed the balance by exactly their sum.
_VERIFY_GRANTS = text(
    """
    SELECT g.user_id, g.id, g.remaining, g.carried + COALESCE(p.total, 0)
    FROM credit.grants g
    LEFT JOIN (SELECT grant_id, sum(delta) AS total FROM credit.postings GROUP BY grant_id) p
        ON p.grant_id = g.id
    WHERE g.remaining <> g.carried + COALESCE(p.total, 0)
    ORDER BY g.user_id, g.id
    """
)
_VERIFY_ENTRIES = text(
    """
    SELECT e.user_id, e.id, e.amount, p.total
    FROM credit.entries e
    JOIN (SELECT entry_id, sum(delta) AS total FROM credit.postings GROUP BY entry_id) p
        ON p.entry_id = e.id
    WHERE e.amount <> p.total
    ORDER BY e.user_id, e.id
    """
)


_VERIFY_ORPHANS = text(
    """
    SELECT p.entry_id, p.grant_id
    FROM credit.postings p
    WHERE NOT EXISTS (SELECT 1 FROM credit.entries e WHERE e.id = p.entry_id)
       OR NOT EXISTS (SELECT 1 FROM credit.grants g WHERE g.id = p.grant_id)
    ORDER BY p.entry_id, p.grant_id
    """
)


async def verify(conn: Connection) -> tuple[int, list[LedgerDifference]]:
    checked = (await conn.execute(text("SELECT count(*) FROM credit.accounts"))).scalar_one()
    differences: list[LedgerDifference] = []
    for row in await conn.execute(_VERIFY_ACCOUNTS):
        user_id, a, p, b, owed, sa, sp, sb, so, ga, gp, gb = row
        differences += ledger_differences(
            str(user_id),
            BucketSums(int(a), int(p), int(b), int(owed)),
            entries=BucketSums(int(sa), int(sp), int(sb), int(so)),
            grants=BucketSums(int(ga), int(gp), int(gb), int(owed)),
        )
    for user_id, grant_id, remaining, posted in await conn.execute(_VERIFY_GRANTS):
        differences.append(LedgerDifference(user_id, f"grant {grant_id}", remaining, int(posted)))
    for user_id, entry_id, amount, posted in await conn.execute(_VERIFY_ENTRIES):
        differences.append(LedgerDifference(user_id, f"entry {entry_id}", amount, int(posted)))
    for entry_id, grant_id in await conn.execute(_VERIFY_ORPHANS):
        differences.append(
            LedgerDifference("", f"posting of entry {entry_id} to grant {grant_id} dangles", 0, 0)
        )
    return int(checked), differences
