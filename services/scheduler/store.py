"""Scheduler tables and queries (schema `scheduler`)."""

from __future__ import annotations

import json
from datetime import datetime

from services.kit.sql import Connection, text


async def record_start(conn: Connection, job: str, instance: str, trigger: str) -> int:
    run_id = (
        await conn.execute(
            text(
                "INSERT INTO scheduler.job_runs (job, instance, trigger) "
                "VALUES (:job, :instance, :trigger) RETURNING id"
            ),
            {"job": job, "instance": instance, "trigger": trigger},
        )
    ).scalar_one()
    return int(run_id)


async def record_finish(
    conn: Connection, run_id: int, outcome: str, counts: dict[str, int], error: str | None
) -> None:
    await conn.execute(
        text(
            """
            UPDATE scheduler.job_runs
            SET finished_at = now(), outcome = :outcome, counts = CAST(:counts AS jsonb),
                error = :error
            WHERE id = :id
            """
        ),
        {"id": run_id, "outcome": outcome, "counts": json.dumps(counts), "error": error},
    )


async def last_success_start(conn: Connection, job: str) -> datetime | None:
    value = (
        await conn.execute(
            text(
                "SELECT max(started_at) FROM scheduler.job_runs WHERE job = :job AND outcome = 'ok'"
            ),
            {"job": job},
        )
    ).scalar_one()
    return value if isinstance(value, datetime) else None
