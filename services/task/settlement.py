"""Settling a done task's reservation with the ledger: charge what the worker measured (never
above the reservation), give the rest back.

The order of writes is what makes it exactly-once across crashes: the task records `done` with its
usage, final cost and `settling` in one transaction (services.task.lifecycle.update_status), then
the ledger's `Settle` runs under the key `settle:task:<id>` (idempotent: a repeat returns the
first result), then the task records `settled`. A crash in between leaves `settling`, which the
repair job settles again with the same cost: the ledger changes once.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Protocol

from services.credit.client import CreditClient
from services.kit.db import Database
from services.kit.errors import DomainError, NotFound
from services.kit.sql import Connection
from services.task.domain import ChargeState, Task, charge_key, settle_key

log = logging.getLogger("studiox.task")


class SettlementStore(Protocol):
    async def move_charge(
        self,
        conn: Connection,
        task_id: uuid.UUID,
        *,
        from_states: Sequence[ChargeState],
        to_state: ChargeState,
    ) -> bool: ...


async def settle_usage(
    db: Database, tasks: SettlementStore, credit: CreditClient, task: Task
) -> bool:
    """Settle a `settling` task's reservation; True when it is settled now (by this call or an
    earlier one). Leaves it `settling` for repair when the ledger cannot be reached."""
    try:
        await credit.settle(
            task.user_id,
            reservation_key=charge_key(task.id),
            # The measured cost, uncapped: the ledger caps it at the reservation and records
            # the rest as uncharged, as the task did.
            cost=task.credits_cost + task.credits_uncharged,
            key=settle_key(task.id),
            description=(
                f"{task.type} task: {task.credits_cost} of {task.credits_reserved} reserved "
                "credits used"
            ),
        )
    except NotFound:
        # A charge made before reservations existed (or on no hold): it stands as charged.
        log.info("task %s has no reservation to settle; its charge stands", task.id)
    except DomainError as error:
        log.warning("settlement of task %s pending: %s", task.id, error.kind.value)
        return False
    async with db.transaction() as conn:
        await tasks.move_charge(
            conn, task.id, from_states=[ChargeState.SETTLING], to_state=ChargeState.SETTLED
        )
    return True
