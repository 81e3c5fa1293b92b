"""Task rules, free of gRPC and SQL: types and costs, input limits, the state machine, and how a
task settles with the credit ledger."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from services.kit.errors import InvalidInput, InvalidState, NotFound
from services.kit.features import FEATURES
from services.kit.validation import MAX_JSON_BYTES, canonical_json, excerpt
from services.task.pricing import PRICES, PriceRule

# Credits a task of each type reserves when its request names no usage (its price before pricing by
# usage); the rules themselves are in services.task.pricing. The type is also the plan feature it
# needs: services.kit.features.
TASK_COSTS: dict[str, int] = {t: rule.flat_price for t, rule in PRICES.items()}
assert set(TASK_COSTS) == set(FEATURES), "every task type has a cost"
# inputData, like any JSON field, is bounded by services.kit.validation (depth and size).
MAX_INPUT_BYTES = MAX_JSON_BYTES
MAX_ERROR_LENGTH = 2000
MAX_CLIENT_KEY_LENGTH = 200


class Status(Enum):
    PENDING = "pending"
    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ChargeState(Enum):
    RESERVED = "reserved"
    CHARGED = "charged"
    REFUNDING = "refunding"
    REFUNDED = "refunded"
    RELEASED = "released"
    # Done: the ledger is owed the settlement of the reservation (charge what was measured, give
    # the rest back), then it is settled.
    SETTLING = "settling"
    SETTLED = "settled"


FINISHED = frozenset({Status.DONE, Status.FAILED, Status.CANCELLED})

# Who may move a task where. Workers drive processing; users may only cancel.
WORKER_TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.PENDING: frozenset({Status.PROCESSING, Status.CANCELLED}),
    Status.PROCESSING: frozenset({Status.DONE, Status.FAILED, Status.CANCELLED}),
}
# A task that ends like this owes its charge back.
REFUNDED_ENDINGS = frozenset({Status.FAILED, Status.CANCELLED})


@dataclass(frozen=True)
class Reservation:
    """A task as its create reserves it: the row written before the ledger is charged."""

    task_id: uuid.UUID
    user_id: str
    task_type: str
    canonical_input: str
    cost: int
    client_key: str | None
    request_hash: str


@dataclass(frozen=True)
class Task:
    id: uuid.UUID
    seq: int
    user_id: str
    type: str
    status: Status
    input_data: dict[str, Any]
    output_data: dict[str, Any] | None
    error: str | None
    credits_cost: int
    charge_state: ChargeState
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    # Reserved at creation (credits_cost is the final cost once done; the reservation until then).
    credits_reserved: int = 0
    usage: dict[str, float] | None = None
    # What the measured usage came to above the reservation (recorded, never charged).
    credits_uncharged: int = 0
    # Set on list pages only (store.list_for_user): input_data, output_data and usage already in
    # the wire encoding of a studiox.task.v1.Task (services/task/documents.py); those three fields
    # are then left empty.
    encoded_documents: bytes | None = None


def charge_key(task_id: uuid.UUID) -> str:
    """The ledger idempotency key tying a task to its one charge."""
    return f"task:{task_id}"


def refund_key(task_id: uuid.UUID) -> str:
    return f"refund:task:{task_id}"


def settle_key(task_id: uuid.UUID) -> str:
    return f"settle:task:{task_id}"


def rule_of(task_type: str) -> PriceRule:
    cost_of(task_type)  # unknown types are refused with the list of valid ones
    return PRICES[task_type]


def final_cost(task: Task, usage: dict[str, float]) -> tuple[int, int]:
    """(credits charged, credits uncharged) for a task done with this measured usage: never
    above its reservation; what the usage came to beyond it is recorded, not charged."""
    reserved = task.credits_reserved or task.credits_cost
    measured = PRICES[task.type].measured_cost(task.input_data, usage, reserved)
    return min(measured, reserved), max(measured - reserved, 0)


def cost_of(task_type: str) -> int:
    if task_type not in TASK_COSTS:
        raise InvalidInput(
            f"Invalid task type: {excerpt(task_type) or '(none)'}. "
            f"Valid types: {', '.join(TASK_COSTS)}",
            valid_types=",".join(TASK_COSTS),
        )
    return TASK_COSTS[task_type]


def check_input(input_data: dict[str, Any]) -> str:
    """The input as canonical JSON (stored, and fingerprinted for idempotency), refused when it
    is too large."""
    return canonical_json(input_data, "inputData", max_bytes=MAX_INPUT_BYTES)


def request_hash(task_type: str, canonical_input: str) -> str:
    """Fingerprint of a create request, to refuse an Idempotency-Key reused for another request."""
    return hashlib.sha256(f"{task_type}\n{canonical_input}".encode()).hexdigest()


def check_client_key(key: str | None) -> str | None:
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > MAX_CLIENT_KEY_LENGTH:
        raise InvalidInput(f"Idempotency-Key must be 1 to {MAX_CLIENT_KEY_LENGTH} characters")
    return key


def parse_task_id(raw: str) -> uuid.UUID:
    """A task id; anything else is 'not found' (never 'invalid'), so ids cannot be probed."""
    try:
        return uuid.UUID(raw)
    except (ValueError, TypeError):
        raise NotFound("Task not found") from None


def parse_status(raw: str) -> Status:
    try:
        return Status(raw)
    except ValueError:
        valid = ", ".join(s.value for s in Status)
        raise InvalidInput(f"Invalid status: {excerpt(raw)}. Valid statuses: {valid}") from None


def check_worker_transition(current: Status, target: Status) -> None:
    if target not in WORKER_TRANSITIONS.get(current, frozenset()):
        raise InvalidState(f"Cannot change a {current.value} task to {target.value}")


def check_cancellable(current: Status) -> None:
    if current in (Status.DONE, Status.FAILED):
        raise InvalidState(f"Cannot cancel a {current.value} task")


def clean_error(error: str) -> str:
    return error.strip()[:MAX_ERROR_LENGTH]
