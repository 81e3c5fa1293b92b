"""Task tables and queries (schema `tasks`).

The statements of a create (insert_reserved, mark_charged: each written for several creates at
once, services.kit.batching) and of a list page run on the lean psycopg path (services.kit.db: a
`LeanConnection`, `%(name)s` parameters, binary results); the rest through services.kit.sql
(`text()` with `:name` parameters)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from psycopg import AsyncConnection as LeanConnection

from services.kit.sql import Connection, text
from services.task.documents import encode_input, encode_output, encode_usage
from services.task.domain import ChargeState, Reservation, Status, Task

COLUMNS = (
    "id, seq, user_id, type, status, input_data, output_data, error, credits_cost, charge_state, "
    "created_at, updated_at, completed_at, credits_reserved, usage, credits_uncharged"
)


# A dict lookup, not Enum(value): Enum's __call__ was ~3 % of a list page's CPU (20 rows).
_STATUSES = {s.value: s for s in Status}
_CHARGE_STATES = {s.value: s for s in ChargeState}


def _task(row: Sequence[Any], encoded_documents: bytes | None = None) -> Task:
    """A row of COLUMNS, in that order (a named row of services.kit.sql or a psycopg tuple)."""
    (
        task_id,
        seq,
        user_id,
        task_type,
        status,
        input_data,
        output_data,
        error,
        cost,
        charge_state,
        created_at,
        updated_at,
        completed_at,
        reserved,
        usage,
        uncharged,
    ) = row[:16]
    return Task(
        id=task_id,
        seq=seq,
        user_id=user_id,
        type=task_type,
        status=_STATUSES[status],
        input_data=input_data if input_data is not None else {},  # None: encoded instead
        output_data=output_data,
        error=error,
        credits_cost=cost,
        charge_state=_CHARGE_STATES[charge_state],
        created_at=created_at,
        updated_at=updated_at,
        completed_at=completed_at,
        credits_reserved=reserved or cost,
        usage=usage,
        credits_uncharged=uncharged,
        encoded_documents=encoded_documents,
    )


_INSERT_RESERVED = f"""
    INSERT INTO tasks.tasks (id, user_id, type, status, input_data, input_pb, credits_cost,
                             credits_reserved, charge_state, idempotency_key, request_hash)
    SELECT r.id, r.uid, r.type, 'pending', r.input::jsonb, r.input_pb, r.cost, r.cost,
           'reserved', r.key, r.hash
    FROM unnest(%(ids)s::uuid[], %(uids)s::text[], %(types)s::text[], %(inputs)s::text[],
                %(input_pbs)s::bytea[], %(costs)s::integer[], %(keys)s::text[],
                %(hashes)s::text[]) AS r(id, uid, type, input, input_pb, cost, key, hash)
    ON CONFLICT (user_id, idempotency_key) DO NOTHING
    RETURNING {COLUMNS}
"""


async def insert_reserved(
    conn: LeanConnection[Any], reservations: Sequence[Reservation]
) -> list[Task]:
    """New pending tasks whose charges are not confirmed yet, in one statement; a reservation
    whose client key was used (by an earlier task, or earlier in the same list) is left out."""
    cursor = await conn.execute(
        _INSERT_RESERVED,
        {
            "ids": [r.task_id for r in reservations],
            "uids": [r.user_id for r in reservations],
            "types": [r.task_type for r in reservations],
            "inputs": [r.canonical_input for r in reservations],
            # From the very text the jsonb column stores, so the two cannot disagree.
            "input_pbs": [encode_input(orjson.loads(r.canonical_input)) for r in reservations],
            "costs": [r.cost for r in reservations],
            "keys": [r.client_key for r in reservations],
            "hashes": [r.request_hash for r in reservations],
        },
    )
    return [_task(row) for row in await cursor.fetchall()]


_BY_CLIENT_KEY = (
    f"SELECT {COLUMNS}, request_hash FROM tasks.tasks "
    "WHERE user_id = %(uid)s AND idempotency_key = %(key)s"
)


async def by_client_key(
    conn: LeanConnection[Any], user_id: str, key: str
) -> tuple[Task, str] | None:
    cursor = await conn.execute(_BY_CLIENT_KEY, {"uid": user_id, "key": key})
    row = await cursor.fetchone()
    return (_task(row), row[16]) if row else None


async def get(
    conn: Connection,
    task_id: uuid.UUID,
    *,
    user_id: str | None = None,
    for_update: bool = False,
) -> Task | None:
    owner = " AND user_id = :uid" if user_id is not None else ""
    lock = " FOR UPDATE" if for_update else ""
    row = (
        await conn.execute(
            text(f"SELECT {COLUMNS} FROM tasks.tasks WHERE id = :id{owner}{lock}"),
            {"id": task_id, "uid": user_id},
        )
    ).first()
    return _task(row) if row else None


async def move_charge(
    conn: Connection,
    task_id: uuid.UUID,
    *,
    from_states: Sequence[ChargeState],
    to_state: ChargeState,
) -> bool:
    result = await conn.execute(
        text(
            """
            UPDATE tasks.tasks
            SET charge_state = :to, updated_at = now(),
                settled_at = CASE WHEN :to IN ('refunded', 'released', 'settled') THEN now() END
            WHERE id = :id AND charge_state = ANY(:from)
            """
        ),
        {"id": task_id, "to": to_state.value, "from": [s.value for s in from_states]},
    )
    return bool(result.rowcount)


_MARK_CHARGED = f"""
    UPDATE tasks.tasks SET charge_state = 'charged', updated_at = now()
    WHERE id = ANY(%(ids)s) AND charge_state = 'reserved'
    RETURNING {COLUMNS}
"""


async def mark_charged(conn: LeanConnection[Any], task_ids: Sequence[uuid.UUID]) -> list[Task]:
    """The reservations confirmed by their charges, in one statement; a task that is no longer a
    reservation is left out."""
    cursor = await conn.execute(_MARK_CHARGED, {"ids": list(task_ids)})
    return [_task(row) for row in await cursor.fetchall()]


async def delete_reserved(conn: Connection, task_id: uuid.UUID) -> None:
    await conn.execute(
        text("DELETE FROM tasks.tasks WHERE id = :id AND charge_state = 'reserved'"),
        {"id": task_id},
    )


async def set_status(
    conn: Connection,
    task_id: uuid.UUID,
    *,
    status: Status,
    charge_state: ChargeState,
    output_data: dict[str, Any] | None = None,
    error: str | None = None,
) -> Task:
    finished = status in (Status.DONE, Status.FAILED, Status.CANCELLED)
    row = (
        await conn.execute(
            text(
                f"""
                UPDATE tasks.tasks
                SET status = :status, charge_state = :charge,
                    output_data = COALESCE(CAST(:output AS jsonb), output_data),
                    output_pb = COALESCE(:output_pb, output_pb),
                    error = COALESCE(:error, error),
                    completed_at = CASE WHEN :finished THEN now() ELSE completed_at END,
                    lease_owner = CASE WHEN :finished THEN NULL ELSE lease_owner END,
                    lease_expires_at = CASE WHEN :finished THEN NULL ELSE lease_expires_at END,
                    updated_at = now()
                WHERE id = :id
                RETURNING {COLUMNS}
                """
            ),
            {
                "id": task_id,
                "status": status.value,
                "charge": charge_state.value,
                "output": json.dumps(output_data) if output_data is not None else None,
                "output_pb": encode_output(output_data),
                "error": error,
                "finished": finished,
            },
        )
    ).one()
    return _task(row)


async def complete(
    conn: Connection,
    task_id: uuid.UUID,
    *,
    output_data: dict[str, Any] | None,
    usage: dict[str, float],
    cost: int,
    uncharged: int,
) -> Task:
    """Done with its measured usage and final cost; the reservation is owed its settlement."""
    row = (
        await conn.execute(
            text(
                f"""
                UPDATE tasks.tasks
                SET status = 'done', charge_state = 'settling',
                    output_data = COALESCE(CAST(:output AS jsonb), output_data),
                    output_pb = COALESCE(:output_pb, output_pb),
                    usage = CAST(:usage AS jsonb), usage_pb = :usage_pb, credits_cost = :cost,
                    credits_uncharged = :uncharged, completed_at = now(), lease_owner = NULL,
                    lease_expires_at = NULL, updated_at = now()
                WHERE id = :id AND charge_state = 'charged'
                RETURNING {COLUMNS}
                """
            ),
            {
                "id": task_id,
                "output": json.dumps(output_data) if output_data is not None else None,
                "output_pb": encode_output(output_data),
                "usage": json.dumps(usage),
                "usage_pb": encode_usage(usage),
                "cost": cost,
                "uncharged": uncharged,
            },
        )
    ).one()
    return _task(row)


# A page reads each task's documents as their stored wire encoding (migration 0004), merged into
# the reply as they are: decoding the jsonb and building Structs per task was a fifth of a page's
# CPU in the task process. A task with a document not encoded (older rows, hand-written SQL) has
# its documents read from the jsonb columns instead, all three, and no encoding.
_ENCODED = """CASE WHEN t.input_pb IS NOT NULL
        AND (t.output_data IS NULL OR t.output_pb IS NOT NULL)
        AND (t.usage IS NULL OR t.usage_pb IS NOT NULL)
    THEN t.input_pb || COALESCE(t.output_pb, ''::bytea) || COALESCE(t.usage_pb, ''::bytea) END"""
# COLUMNS in their order (what _task reads), each document only when not encoded; then the
# encoding, last.
_LIST_COLUMNS = (
    ", ".join(
        f"CASE WHEN e.docs IS NULL THEN t.{name} END"
        if name in ("input_data", "output_data", "usage")
        else f"t.{name}"
        for name in COLUMNS.split(", ")
    )
    + ", e.docs"
)
# One statement per filter shape: each is prepared once with its own plan (a NULL-tolerant
# single statement would be planned generically and read the whole index range).
_LIST = (
    f"SELECT {_LIST_COLUMNS} FROM tasks.tasks t CROSS JOIN LATERAL (SELECT {_ENCODED} AS docs) e "
    "WHERE t.user_id = %(uid)s{status}{before} ORDER BY t.seq DESC LIMIT %(limit)s"
)
_LISTS = {
    (has_status, has_before): _LIST.format(
        status=" AND t.status = %(status)s" if has_status else "",
        before=" AND t.seq < %(before)s" if has_before else "",
    )
    for has_status in (False, True)
    for has_before in (False, True)
}


async def list_for_user(
    conn: LeanConnection[Any],
    user_id: str,
    *,
    status: Status | None,
    limit: int,
    before_seq: int | None,
) -> list[Task]:
    cursor = await conn.execute(
        _LISTS[status is not None, before_seq is not None],
        {
            "uid": user_id,
            "status": status.value if status else None,
            "before": before_seq,
            "limit": limit,
        },
        # Binary results: the encodings arrive as they are stored, not hex-encoded by the server
        # and decoded here (text results cost PostgreSQL and this process ~30 us more a page).
        binary=True,
    )
    return [_task(r, r[-1]) for r in await cursor.fetchall()]


async def stats_for_user(conn: Connection, user_id: str) -> list[tuple[str, str, int]]:
    """(status, type, count) for every combination the user has."""
    rows = await conn.execute(
        text(
            "SELECT status, type, count(*) FROM tasks.tasks WHERE user_id = :uid "
            "GROUP BY status, type"
        ),
        {"uid": user_id},
    )
    return [(r[0], r[1], int(r[2])) for r in rows]


async def requeue_expired(conn: Connection, max_attempts: int) -> int:
    result = await conn.execute(
        text(
            """
            UPDATE tasks.tasks
            SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
            WHERE status = 'processing' AND lease_expires_at < now() AND attempts < :max
            """
        ),
        {"max": max_attempts},
    )
    return int(result.rowcount)


async def fail_exhausted(conn: Connection, max_attempts: int) -> list[Task]:
    rows = await conn.execute(
        text(
            f"""
            UPDATE tasks.tasks
            SET status = 'failed', charge_state = 'refunding',
                error = 'Processing did not finish after ' || attempts || ' attempts',
                lease_owner = NULL, lease_expires_at = NULL, completed_at = now(),
                updated_at = now()
            WHERE status = 'processing' AND lease_expires_at < now() AND attempts >= :max
            RETURNING {COLUMNS}
            """
        ),
        {"max": max_attempts},
    )
    return [_task(r) for r in rows]


async def claim(conn: Connection, *, limit: int, lease_seconds: int, worker_id: str) -> list[Task]:
    rows = await conn.execute(
        text(
            f"""
            WITH picked AS (
                SELECT id FROM tasks.tasks
                WHERE status = 'pending' AND charge_state = 'charged'
                ORDER BY seq
                LIMIT :limit
                FOR UPDATE SKIP LOCKED
            )
            UPDATE tasks.tasks t
            SET status = 'processing', attempts = t.attempts + 1, lease_owner = :worker,
                lease_expires_at = now() + make_interval(secs => :lease), updated_at = now()
            FROM picked
            WHERE t.id = picked.id
            RETURNING {", ".join("t." + c.strip() for c in COLUMNS.split(","))}
            """
        ),
        {"limit": limit, "lease": lease_seconds, "worker": worker_id},
    )
    return sorted((_task(r) for r in rows), key=lambda t: t.seq)


async def heartbeat(
    conn: Connection, task_id: uuid.UUID, *, worker_id: str, lease_seconds: int
) -> datetime | None:
    row = (
        await conn.execute(
            text(
                """
                UPDATE tasks.tasks
                SET lease_expires_at = now() + make_interval(secs => :lease), updated_at = now()
                WHERE id = :id AND status = 'processing' AND lease_owner = :worker
                RETURNING lease_expires_at
                """
            ),
            {"id": task_id, "lease": lease_seconds, "worker": worker_id},
        )
    ).first()
    return row[0] if row else None


async def unsettled(
    conn: Connection, *, min_age_seconds: int, recheck_seconds: int, limit: int
) -> list[Task]:
    """Tasks whose settlement with the ledger is not final: reservations older than min_age,
    owed refunds, and recently released tasks (a charge may still surface for those)."""
    rows = await conn.execute(
        text(
            f"""
            SELECT {COLUMNS} FROM tasks.tasks
            WHERE (charge_state = 'reserved'
                   AND updated_at < now() - make_interval(secs => :min_age))
               OR charge_state IN ('refunding', 'settling')
               OR (charge_state = 'released'
                   AND settled_at > now() - make_interval(secs => :recheck))
            ORDER BY updated_at
            LIMIT :limit
            """
        ),
        {"min_age": min_age_seconds, "recheck": recheck_seconds, "limit": limit},
    )
    return [_task(r) for r in rows]


async def give_up_reservation(conn: Connection, task_id: uuid.UUID) -> bool:
    """A reservation nobody finished: the task fails and whatever was charged is owed back."""
    result = await conn.execute(
        text(
            """
            UPDATE tasks.tasks
            SET status = CASE WHEN status IN ('pending', 'processing') THEN 'failed' ELSE status END,
                error = COALESCE(error, 'Task creation was interrupted; no credits were kept'),
                completed_at = COALESCE(completed_at, now()),
                charge_state = 'refunding', updated_at = now()
            WHERE id = :id AND charge_state = 'reserved'
            """
        ),
        {"id": task_id},
    )
    return bool(result.rowcount)
