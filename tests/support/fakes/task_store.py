"""services.task.store in memory, with the same conditional updates (a reservation is marked
charged or given up only while it is still a reservation, leases expire by the clock)."""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection as LeanConnection

from services.kit.sql import Connection
from services.task.domain import FINISHED, ChargeState, Reservation, Status, Task
from tests.support.fakes.clock import FakeClock
from tests.support.fakes.journal import Journal


@dataclass
class _Row:
    task: Task
    client_key: str | None
    request_hash: str
    attempts: int = 0
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    settled_at: datetime | None = None


class FakeTaskStore:
    def __init__(self, journal: Journal | None = None, clock: FakeClock | None = None) -> None:
        self.journal = journal or Journal()
        self.clock = clock or FakeClock()
        self.rows: dict[uuid.UUID, _Row] = {}
        self._seq = 0

    def snapshot(self) -> Any:
        return copy.deepcopy((self.rows, self._seq))

    def restore(self, state: Any) -> None:
        self.rows, self._seq = state

    # --- test helpers ---

    def task(self, task_id: uuid.UUID) -> Task:
        return self.rows[task_id].task

    def only(self) -> Task:
        (row,) = self.rows.values()
        return row.task

    def expire_lease(self, task_id: uuid.UUID) -> None:
        self.rows[task_id].lease_expires_at = self.clock.now() - timedelta(seconds=1)

    def _update(self, row: _Row, **changes: Any) -> Task:
        row.task = replace(row.task, updated_at=self.clock.now(), **changes)
        return row.task

    # --- the statements ---

    async def insert_reserved(
        self, conn: LeanConnection[Any], reservations: Sequence[Reservation]
    ) -> list[Task]:
        self.journal.add("tasks.insert_reserved")
        await asyncio.sleep(0)  # a statement's round trip: other calls run meanwhile
        written = []
        for r in reservations:
            if r.client_key is not None and any(
                row.task.user_id == r.user_id and row.client_key == r.client_key
                for row in self.rows.values()
            ):
                continue
            self._seq += 1
            now = self.clock.now()
            task = Task(
                id=r.task_id,
                seq=self._seq,
                user_id=r.user_id,
                type=r.task_type,
                status=Status.PENDING,
                input_data=json.loads(r.canonical_input),
                output_data=None,
                error=None,
                credits_cost=r.cost,
                charge_state=ChargeState.RESERVED,
                created_at=now,
                updated_at=now,
                completed_at=None,
                credits_reserved=r.cost,
            )
            self.rows[r.task_id] = _Row(task, r.client_key, r.request_hash)
            written.append(task)
        return written

    async def by_client_key(
        self, conn: LeanConnection[Any], user_id: str, key: str
    ) -> tuple[Task, str] | None:
        for row in self.rows.values():
            if row.task.user_id == user_id and row.client_key == key:
                return row.task, row.request_hash
        return None

    async def get(
        self,
        conn: Connection,
        task_id: uuid.UUID,
        *,
        user_id: str | None = None,
        for_update: bool = False,
    ) -> Task | None:
        row = self.rows.get(task_id)
        if row is None or (user_id is not None and row.task.user_id != user_id):
            return None
        return row.task

    async def move_charge(
        self,
        conn: Connection,
        task_id: uuid.UUID,
        *,
        from_states: Sequence[ChargeState],
        to_state: ChargeState,
    ) -> bool:
        self.journal.add(f"tasks.move_charge:{to_state.value}")
        row = self.rows.get(task_id)
        if row is None or row.task.charge_state not in from_states:
            return False
        self._update(row, charge_state=to_state)
        if to_state in (ChargeState.REFUNDED, ChargeState.RELEASED, ChargeState.SETTLED):
            row.settled_at = self.clock.now()
        return True

    async def list_for_user(
        self,
        conn: LeanConnection[Any],
        user_id: str,
        *,
        status: Status | None,
        limit: int,
        before_seq: int | None,
    ) -> list[Task]:
        found = [
            r.task
            for r in self.rows.values()
            if r.task.user_id == user_id
            and (status is None or r.task.status is status)
            and (before_seq is None or r.task.seq < before_seq)
        ]
        return sorted(found, key=lambda t: t.seq, reverse=True)[:limit]

    async def mark_charged(
        self, conn: LeanConnection[Any], task_ids: Sequence[uuid.UUID]
    ) -> list[Task]:
        self.journal.add("tasks.mark_charged")
        await asyncio.sleep(0)  # a statement's round trip: other calls run meanwhile
        marked = []
        for task_id in dict.fromkeys(task_ids):
            row = self.rows.get(task_id)
            if row is not None and row.task.charge_state is ChargeState.RESERVED:
                marked.append(self._update(row, charge_state=ChargeState.CHARGED))
        return marked

    async def complete(
        self,
        conn: Connection,
        task_id: uuid.UUID,
        *,
        output_data: dict[str, Any] | None,
        usage: dict[str, float],
        cost: int,
        uncharged: int,
    ) -> Task:
        self.journal.add("tasks.complete:settling")
        row = self.rows[task_id]
        assert row.task.charge_state is ChargeState.CHARGED
        assert cost <= row.task.credits_reserved  # the table's CHECK
        row.lease_owner = row.lease_expires_at = None
        return self._update(
            row,
            status=Status.DONE,
            charge_state=ChargeState.SETTLING,
            output_data=output_data if output_data is not None else row.task.output_data,
            usage=dict(usage),
            credits_cost=cost,
            credits_uncharged=uncharged,
            completed_at=self.clock.now(),
        )

    async def delete_reserved(self, conn: Connection, task_id: uuid.UUID) -> None:
        self.journal.add("tasks.delete_reserved")
        row = self.rows.get(task_id)
        if row is not None and row.task.charge_state is ChargeState.RESERVED:
            del self.rows[task_id]

    async def set_status(
        self,
        conn: Connection,
        task_id: uuid.UUID,
        *,
        status: Status,
        charge_state: ChargeState,
        output_data: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> Task:
        self.journal.add(f"tasks.set_status:{status.value}:{charge_state.value}")
        row = self.rows[task_id]
        finished = status in FINISHED
        if finished:
            row.lease_owner = row.lease_expires_at = None
        return self._update(
            row,
            status=status,
            charge_state=charge_state,
            output_data=output_data if output_data is not None else row.task.output_data,
            error=error if error is not None else row.task.error,
            completed_at=self.clock.now() if finished else row.task.completed_at,
        )

    def _expired(self, row: _Row) -> bool:
        return (
            row.task.status is Status.PROCESSING
            and row.lease_expires_at is not None
            and row.lease_expires_at < self.clock.now()
        )

    async def requeue_expired(self, conn: Connection, max_attempts: int) -> int:
        requeued = 0
        for row in self.rows.values():
            if self._expired(row) and row.attempts < max_attempts:
                row.lease_owner = row.lease_expires_at = None
                self._update(row, status=Status.PENDING)
                requeued += 1
        return requeued

    async def fail_exhausted(self, conn: Connection, max_attempts: int) -> list[Task]:
        failed = []
        for row in self.rows.values():
            if self._expired(row) and row.attempts >= max_attempts:
                row.lease_owner = row.lease_expires_at = None
                failed.append(
                    self._update(
                        row,
                        status=Status.FAILED,
                        charge_state=ChargeState.REFUNDING,
                        error=f"Processing did not finish after {row.attempts} attempts",
                        completed_at=self.clock.now(),
                    )
                )
        return failed

    async def claim(
        self, conn: Connection, *, limit: int, lease_seconds: int, worker_id: str
    ) -> list[Task]:
        ready = sorted(
            (
                r
                for r in self.rows.values()
                if r.task.status is Status.PENDING and r.task.charge_state is ChargeState.CHARGED
            ),
            key=lambda r: r.task.seq,
        )[:limit]
        for row in ready:
            row.attempts += 1
            row.lease_owner = worker_id
            row.lease_expires_at = self.clock.now() + timedelta(seconds=lease_seconds)
            self._update(row, status=Status.PROCESSING)
        return [row.task for row in ready]

    async def heartbeat(
        self, conn: Connection, task_id: uuid.UUID, *, worker_id: str, lease_seconds: int
    ) -> datetime | None:
        row = self.rows.get(task_id)
        if row is None or row.task.status is not Status.PROCESSING or row.lease_owner != worker_id:
            return None
        row.lease_expires_at = self.clock.now() + timedelta(seconds=lease_seconds)
        self._update(row)
        return row.lease_expires_at

    async def unsettled(
        self, conn: Connection, *, min_age_seconds: int, recheck_seconds: int, limit: int
    ) -> list[Task]:
        now = self.clock.now()

        def open_(row: _Row) -> bool:
            state = row.task.charge_state
            if state is ChargeState.RESERVED:
                return row.task.updated_at < now - timedelta(seconds=min_age_seconds)
            if state is ChargeState.RELEASED:
                return row.settled_at is not None and row.settled_at > now - timedelta(
                    seconds=recheck_seconds
                )
            return state in (ChargeState.REFUNDING, ChargeState.SETTLING)

        found = sorted((r for r in self.rows.values() if open_(r)), key=lambda r: r.task.updated_at)
        return [row.task for row in found[:limit]]

    async def give_up_reservation(self, conn: Connection, task_id: uuid.UUID) -> bool:
        self.journal.add("tasks.give_up_reservation")
        row = self.rows.get(task_id)
        if row is None or row.task.charge_state is not ChargeState.RESERVED:
            return False
        task = row.task
        self._update(
            row,
            status=Status.FAILED
            if task.status in (Status.PENDING, Status.PROCESSING)
            else task.status,
            error=task.error or "Task creation was interrupted; no credits were kept",
            completed_at=task.completed_at or self.clock.now(),
            charge_state=ChargeState.REFUNDING,
        )
        return True
