"""The exactly-once invariants between tasks and the ledger, checked straight in PostgreSQL."""

from __future__ import annotations

import psycopg


def settlement_problems(database_url: str) -> list[str]:
    """Every way the task table and the ledger disagree; empty when settled correctly."""
    problems: list[str] = []
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            """
            SELECT t.id, t.status, t.charge_state, t.credits_cost,
                   count(c.id) AS charges,
                   count(r.id) AS refunds,
                   COALESCE(sum(c.usage), 0) AS charged,
                   COALESCE(-sum(r.usage), 0) AS refunded
            FROM tasks.tasks t
            LEFT JOIN credit.entries c
                   ON c.idempotency_key = 'task:' || t.id AND c.kind = 'charge'
            LEFT JOIN credit.entries r ON r.refund_of = c.id
            GROUP BY t.id, t.status, t.charge_state, t.credits_cost
            """
        ).fetchall()
        for task_id, status, charge_state, cost, charges, refunds, charged, refunded in rows:
            if charge_state in ("reserved", "refunding", "settling"):
                problems.append(f"{task_id}: unsettled ({status}, {charge_state})")
            if status == "done":
                # Its reservation settled: the hold, less what came back, is what it cost.
                if charges != 1 or refunds > 1 or charged - refunded != cost:
                    problems.append(
                        f"{task_id}: done costing {cost} with {charges} charge(s) of {charged}, "
                        f"{refunded} given back"
                    )
            elif status in ("pending", "processing"):
                if (charges, refunds) != (1, 0):
                    problems.append(
                        f"{task_id}: {status} with {charges} charge(s), {refunds} refund(s)"
                    )
            elif charges > 1 or refunds > charges or charged != refunded:
                problems.append(
                    f"{task_id}: {status} with {charges} charge(s) of {charged}, refunded {refunded}"
                )
        orphans = conn.execute(
            """
            SELECT e.idempotency_key FROM credit.entries e
            WHERE e.kind = 'charge' AND e.idempotency_key LIKE 'task:%%'
              AND NOT EXISTS (
                  SELECT 1 FROM tasks.tasks t WHERE 'task:' || t.id = e.idempotency_key)
            """
        ).fetchall()
        problems += [f"{key}: charge without a task" for (key,) in orphans]
    return problems
