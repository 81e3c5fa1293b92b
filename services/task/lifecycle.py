"""Service layer of the task service: a task's life across the task table and the credit ledger.

Exactly-once charging rests on the order of writes: the task row is committed first (charge state
`reserved`), then the ledger is charged with the task id as idempotency key, then the task is marked
`charged` (concurrent creates share the first and last statements, services.kit.batching; each
goes on only after the statement carrying its row has committed). A crash between any two steps
leaves a reservation that the repair job settles by giving the task up and refunding whatever the
ledger holds under that key. Refunds go the same way: the task records that a refund is owed
(`refunding`) before the ledger is asked, so a crash leaves an owed refund that repair pays. Both
ledger calls are idempotent by key, so retries and repair can never double anything.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from psycopg import AsyncConnection as LeanConnection

from services.credit.client import CreditClient
from services.kit.batching import Batcher
from services.kit.clients import ServiceChannels
from services.kit.context import Identity
from services.kit.db import VALUE_REFUSALS, Database
from services.kit.errors import (
    DomainError,
    FeatureNotInPlan,
    InsufficientCredits,
    InvalidInput,
    InvalidState,
    NotFound,
    Unavailable,
)
from services.kit.features import feature_of
from services.kit.sql import Connection
from services.task import metrics, store
from services.task.domain import (
    REFUNDED_ENDINGS,
    ChargeState,
    Reservation,
    Status,
    Task,
    charge_key,
    check_cancellable,
    check_client_key,
    check_input,
    check_worker_transition,
    clean_error,
    cost_of,
    final_cost,
    parse_status,
    parse_task_id,
    refund_key,
    request_hash,
    rule_of,
)
from services.task.pricing import PriceRule, check_usage
from services.task.settlement import settle_usage

log = logging.getLogger("studiox.task")

# Deadline of each ledger call (a restarting credit service is waited for this long).
LEDGER_TIMEOUT_SECONDS = 5.0
MAX_ATTEMPTS = 3
DEFAULT_LEASE_SECONDS = 300
MAX_LEASE_SECONDS = 3600
MAX_CLAIM = 100
# A reservation younger than this may still be finishing (the create's ledger call has a 5 s
# deadline); older ones are given up.
DEFAULT_REPAIR_MIN_AGE_SECONDS = 60
# After giving a task up with nothing charged, keep checking this long for a late charge.
RELEASE_RECHECK_SECONDS = 3600
REPAIR_BATCH = 500
# Refusals that mean "this task must not exist"; anything else leaves the reservation to repair.
_REFUSALS = (InsufficientCredits, FeatureNotInPlan, NotFound, InvalidInput)


@dataclass(frozen=True)
class Created:
    task: Task
    credit_deducted: int
    remaining_credits: int


@dataclass(frozen=True)
class Quoted:
    """What creating a task of a type would do now (nothing is charged)."""

    type: str
    cost: int
    allowed: bool
    reason: str
    message: str
    available_credits: int
    plan_name: str
    is_unlimited: bool
    rule: PriceRule | None = None


@dataclass(frozen=True)
class Repaired:
    rejected: int = 0
    refunded: int = 0
    # Done tasks whose reservation was settled by repair (the settlement was interrupted).
    settled: int = 0


class TaskStore(Protocol):
    """The statements this layer runs: services.task.store, or a fake in unit tests."""

    async def insert_reserved(
        self, conn: LeanConnection[Any], reservations: Sequence[Reservation]
    ) -> list[Task]: ...

    async def by_client_key(
        self, conn: LeanConnection[Any], user_id: str, key: str
    ) -> tuple[Task, str] | None: ...

    async def get(
        self,
        conn: Connection,
        task_id: uuid.UUID,
        *,
        user_id: str | None = None,
        for_update: bool = False,
    ) -> Task | None: ...

    async def move_charge(
        self,
        conn: Connection,
        task_id: uuid.UUID,
        *,
        from_states: Sequence[ChargeState],
        to_state: ChargeState,
    ) -> bool: ...

    async def mark_charged(
        self, conn: LeanConnection[Any], task_ids: Sequence[uuid.UUID]
    ) -> list[Task]: ...

    async def list_for_user(
        self,
        conn: LeanConnection[Any],
        user_id: str,
        *,
        status: Status | None,
        limit: int,
        before_seq: int | None,
    ) -> list[Task]: ...

    async def complete(
        self,
        conn: Connection,
        task_id: uuid.UUID,
        *,
        output_data: dict[str, Any] | None,
        usage: dict[str, float],
        cost: int,
        uncharged: int,
    ) -> Task: ...

    async def delete_reserved(self, conn: Connection, task_id: uuid.UUID) -> None: ...

    async def set_status(
        self,
        conn: Connection,
        task_id: uuid.UUID,
        *,
        status: Status,
        charge_state: ChargeState,
        output_data: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> Task: ...

    async def requeue_expired(self, conn: Connection, max_attempts: int) -> int: ...

    async def fail_exhausted(self, conn: Connection, max_attempts: int) -> list[Task]: ...

    async def claim(
        self, conn: Connection, *, limit: int, lease_seconds: int, worker_id: str
    ) -> list[Task]: ...

    async def heartbeat(
        self, conn: Connection, task_id: uuid.UUID, *, worker_id: str, lease_seconds: int
    ) -> datetime | None: ...

    async def unsettled(
        self, conn: Connection, *, min_age_seconds: int, recheck_seconds: int, limit: int
    ) -> list[Task]: ...

    async def give_up_reservation(self, conn: Connection, task_id: uuid.UUID) -> bool: ...


class TaskLifecycle:
    def __init__(self, db: Database, channels: ServiceChannels, tasks: TaskStore = store) -> None:
        self._db = db
        self._store = tasks
        self._credit = CreditClient(channels, timeout=LEDGER_TIMEOUT_SECONDS)
        # Concurrent creates write their reservations, and mark their tasks charged, in one
        # statement each (services.kit.batching). A reservation carries client input: one the
        # database refuses fails only its own create.
        self._reservations: Batcher[Reservation, Task] = Batcher(
            self._insert_reserved, refused=VALUE_REFUSALS
        )
        self._marks: Batcher[uuid.UUID, Task] = Batcher(self._mark_charged)

    # --- creation -------------------------------------------------------------------------

    async def create(
        self,
        identity: Identity,
        task_type: str,
        input_data: dict[str, Any],
        client_key: str | None,
    ) -> Created:
        # The reservation: the most this request can cost (services.task.pricing).
        cost = rule_of(task_type).reservation(input_data)
        canonical = check_input(input_data)
        key = check_client_key(client_key)
        fingerprint = request_hash(task_type, canonical)
        # Each statement below is its own transaction: the reservation must be committed before
        # the ledger is charged.
        task = await self._reservations.submit(
            Reservation(
                task_id=uuid.uuid4(),
                user_id=identity.user_id,
                task_type=task_type,
                canonical_input=canonical,
                cost=cost,
                client_key=key,
                request_hash=fingerprint,
            )
        )
        if task is None:
            assert key is not None
            async with self._db.lean() as conn:
                found = await self._store.by_client_key(conn, identity.user_id, key)
            if found is None:  # the reservation it collided with was refused meanwhile
                raise Unavailable("Please retry the request")
            task, earlier_fingerprint = found
            if earlier_fingerprint != fingerprint:
                raise InvalidInput("Idempotency-Key was already used for a different task")
        if task.charge_state is not ChargeState.RESERVED:
            return Created(task, cost, await self._balance(identity.user_id))
        return await self._charge_reserved(task)

    async def _charge_reserved(self, task: Task) -> Created:
        try:
            posted = await self._credit.charge(
                task.user_id,
                task.credits_cost,
                key=charge_key(task.id),
                feature=feature_of(task.type),
                reference=str(task.id),
                description=f"{task.type} task",
                hold=True,
            )
        except _REFUSALS:
            async with self._db.transaction() as conn:
                await self._store.delete_reserved(conn, task.id)
            raise
        except DomainError as error:
            log.warning("charge of task %s unconfirmed: %s", task.id, error.kind.value)
            raise Unavailable("Credits are temporarily unavailable; please retry") from error
        charged = await self._marks.submit(task.id)
        current = charged or await self._reload(task.id)
        if current.charge_state is not ChargeState.CHARGED:
            # Repair gave this reservation up while we were charging: pay the charge back.
            await self._settle_refund(current)
            raise Unavailable("Task creation was interrupted; no credits were kept")
        return Created(current, task.credits_cost, posted.remaining_credits)

    async def _insert_reserved(self, reservations: list[Reservation]) -> dict[Reservation, Task]:
        async with self._db.lean() as conn:
            written = {t.id: t for t in await self._store.insert_reserved(conn, reservations)}
        # A reservation left out collided with an earlier one under its client key.
        return {r: written[r.task_id] for r in reservations if r.task_id in written}

    async def _mark_charged(self, task_ids: list[uuid.UUID]) -> dict[uuid.UUID, Task]:
        async with self._db.lean() as conn:
            return {task.id: task for task in await self._store.mark_charged(conn, task_ids)}

    async def quote(self, identity: Identity, task_type: str) -> Quoted:
        """The price creation would charge and whether the ledger would take it now: the same cost
        (domain.cost_of) and the ledger's own rule (plan feature, live credits), without a charge."""
        cost = cost_of(task_type)
        reply = await self._credit.quote(identity.user_id, cost, feature_of(task_type))
        return Quoted(
            type=task_type,
            cost=cost,
            allowed=reply.allowed,
            reason=reply.reason,
            message=reply.message,
            available_credits=reply.available_credits,
            plan_name=reply.plan_name,
            is_unlimited=reply.is_unlimited,
            rule=rule_of(task_type),
        )

    async def _balance(self, user_id: str) -> int:
        return (await self._credit.account(user_id)).current_credits

    # --- refunds --------------------------------------------------------------------------

    async def _settle_refund(self, task: Task) -> bool:
        """Pay back what the ledger holds for this task; True when this call refunded it. Leaves
        the task `refunding` (repair retries) when the ledger cannot be reached."""
        try:
            posted = await self._credit.refund(
                task.user_id,
                charge_key=charge_key(task.id),
                key=refund_key(task.id),
                description=f"Refund: {task.type} task {task.status.value}",
            )
            outcome, applied = ChargeState.REFUNDED, posted.applied
        except NotFound:
            outcome, applied = ChargeState.RELEASED, False  # nothing was charged (yet)
        except InvalidState:
            outcome, applied = ChargeState.REFUNDED, False  # already paid back
        except DomainError as error:
            log.warning("refund of task %s pending: %s", task.id, error.kind.value)
            return False
        async with self._db.transaction() as conn:
            await self._store.move_charge(
                conn,
                task.id,
                from_states=[ChargeState.REFUNDING, ChargeState.RELEASED],
                to_state=outcome,
            )
        return applied

    # --- user and worker changes ----------------------------------------------------------

    async def cancel(self, identity: Identity, raw_id: str) -> tuple[Task, bool]:
        task_id = parse_task_id(raw_id)
        async with self._db.transaction() as conn:
            task = await self._store.get(conn, task_id, user_id=identity.user_id, for_update=True)
            if task is None:
                raise NotFound("Task not found")
            if task.status is not Status.CANCELLED:
                check_cancellable(task.status)
                task = await self._store.set_status(
                    conn, task_id, status=Status.CANCELLED, charge_state=_owed(task)
                )
        applied = False
        if task.charge_state is ChargeState.REFUNDING:
            applied = await self._settle_refund(task)
            if not applied and await self._still_owed(task_id):
                raise Unavailable("Cancelled; the refund is pending, please retry")
        return await self._reload(task_id), applied

    async def update_status(
        self,
        raw_id: str,
        raw_status: str,
        output_data: dict[str, Any] | None,
        error: str,
        usage: Mapping[str, float] | None = None,
    ) -> Task:
        task_id = parse_task_id(raw_id)
        target = parse_status(raw_status)
        measured = check_usage(usage or {})
        async with self._db.transaction() as conn:
            task = await self._store.get(conn, task_id, for_update=True)
            if task is None:
                raise NotFound("Task not found")
            check_worker_transition(task.status, target)
            if target is Status.PROCESSING and task.charge_state is not ChargeState.CHARGED:
                raise InvalidState("Task is not ready for processing")
            if target is Status.DONE and task.charge_state is ChargeState.CHARGED:
                # Done with what it measured: the final cost is decided here, with the status,
                # and the ledger is owed the settlement (settled below, or by repair).
                cost, uncharged = final_cost(task, measured)
                task = await self._store.complete(
                    conn,
                    task_id,
                    output_data=output_data,
                    usage=measured,
                    cost=cost,
                    uncharged=uncharged,
                )
                metrics.record_settlement(task.type, task.credits_reserved, cost, uncharged)
            else:
                task = await self._set_status(conn, task, target, output_data, error)
        if task.charge_state is ChargeState.REFUNDING:
            await self._settle_refund(task)
        elif task.charge_state is ChargeState.SETTLING:
            await settle_usage(self._db, self._store, self._credit, task)
        return await self._reload(task_id)

    async def _set_status(
        self,
        conn: Connection,
        task: Task,
        target: Status,
        output_data: dict[str, Any] | None,
        error: str,
    ) -> Task:
        return await self._store.set_status(
            conn,
            task.id,
            status=target,
            charge_state=_owed(task) if target in REFUNDED_ENDINGS else task.charge_state,
            output_data=output_data if target is Status.DONE else None,
            error=clean_error(error) if target is Status.FAILED and error else None,
        )

    # --- processing -----------------------------------------------------------------------

    async def claim(
        self, limit: int, lease_seconds: int, worker_id: str
    ) -> tuple[list[Task], int, int]:
        if not 0 <= limit <= MAX_CLAIM:
            raise InvalidInput(f"limit must be between 0 and {MAX_CLAIM}")
        lease = lease_seconds or DEFAULT_LEASE_SECONDS
        if not 1 <= lease <= MAX_LEASE_SECONDS:
            raise InvalidInput(f"leaseSeconds must be between 1 and {MAX_LEASE_SECONDS}")
        async with self._db.transaction() as conn:
            requeued = await self._store.requeue_expired(conn, MAX_ATTEMPTS)
            exhausted = await self._store.fail_exhausted(conn, MAX_ATTEMPTS)
        claimed: list[Task] = []
        if limit:  # 0: lease upkeep only
            async with self._db.transaction() as conn:
                claimed = await self._store.claim(
                    conn, limit=limit, lease_seconds=lease, worker_id=worker_id or "scheduler"
                )
        for task in exhausted:
            await self._settle_refund(task)
        return claimed, requeued, len(exhausted)

    async def heartbeat(self, raw_id: str, worker_id: str, lease_seconds: int) -> Any:
        task_id = parse_task_id(raw_id)
        lease = lease_seconds or DEFAULT_LEASE_SECONDS
        if not 1 <= lease <= MAX_LEASE_SECONDS:
            raise InvalidInput(f"leaseSeconds must be between 1 and {MAX_LEASE_SECONDS}")
        async with self._db.transaction() as conn:
            expires = await self._store.heartbeat(
                conn, task_id, worker_id=worker_id, lease_seconds=lease
            )
        if expires is None:
            raise InvalidState("Task is not being processed by this worker")
        return expires

    async def repair(self, min_age_seconds: int | None) -> Repaired:
        min_age = DEFAULT_REPAIR_MIN_AGE_SECONDS if min_age_seconds is None else min_age_seconds
        if min_age < 0:
            raise InvalidInput("minAgeSeconds must not be negative")
        async with self._db.transaction() as conn:
            tasks = await self._store.unsettled(
                conn,
                min_age_seconds=min_age,
                recheck_seconds=RELEASE_RECHECK_SECONDS,
                limit=REPAIR_BATCH,
            )
        metrics.record_repair_backlog(task.charge_state for task in tasks)
        rejected = refunded = settled = 0
        for task in tasks:
            if task.charge_state is ChargeState.SETTLING:
                settled += await settle_usage(self._db, self._store, self._credit, task)
                continue
            if task.charge_state is ChargeState.RESERVED:
                async with self._db.transaction() as conn:
                    if not await self._store.give_up_reservation(conn, task.id):
                        continue  # finished by its create call meanwhile
                rejected += 1
            if await self._settle_refund(task):
                refunded += 1
        return Repaired(rejected=rejected, refunded=refunded, settled=settled)

    # --- reads ----------------------------------------------------------------------------

    async def page(
        self, identity: Identity, status: Status | None, limit: int, before_seq: int | None
    ) -> list[Task]:
        """Up to `limit` of the caller's tasks, newest first, older than the cursor."""
        async with self._db.lean() as conn:
            return await self._store.list_for_user(
                conn, identity.user_id, status=status, limit=limit, before_seq=before_seq
            )

    async def get(self, identity: Identity, raw_id: str) -> Task:
        task_id = parse_task_id(raw_id)
        async with self._db.autocommit() as conn:
            task = await self._store.get(conn, task_id, user_id=identity.user_id)
        if task is None:
            raise NotFound("Task not found")
        return task

    async def _reload(self, task_id: uuid.UUID) -> Task:
        async with self._db.autocommit() as conn:
            task = await self._store.get(conn, task_id)
        assert task is not None
        return task

    async def _still_owed(self, task_id: uuid.UUID) -> bool:
        return (await self._reload(task_id)).charge_state is ChargeState.REFUNDING


def _owed(task: Task) -> ChargeState:
    """Charge state of a task that is ending without its work being kept."""
    if task.charge_state in (ChargeState.CHARGED, ChargeState.RESERVED):
        return ChargeState.REFUNDING
    return task.charge_state
