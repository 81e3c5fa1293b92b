"""Task settlement as Prometheus gauges (how many, never which: task and user ids stay out of
labels)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, Gauge

from services.task.domain import ChargeState

# Repair runs every few minutes and settles what it finds, so a backlog that stays above zero
# across runs means settlements keep failing (deploy/prometheus/rules.yml: RepairBacklog).
REPAIR_BACKLOG = Gauge(
    "studiox_repair_backlog",
    "Tasks owing a settlement with the ledger that the latest repair pass found, by charge state "
    "(reserved: abandoned reservation; refunding: refund owed; settling: settlement owed)",
    ["state"],
)
# With several task replicas only the one serving a pass updates the gauge: the rules read the
# backlog of the replica with the latest pass.
REPAIR_LAST_RUN = Gauge(
    "studiox_repair_last_run_timestamp_seconds", "When this process last ran a repair pass"
)
OWED = (ChargeState.RESERVED, ChargeState.REFUNDING, ChargeState.SETTLING)
# Done tasks' reservations: what was charged, given back, and left uncharged above a reservation
# (a price rule whose estimate runs short shows here first).
SETTLED_CREDITS = Counter(
    "studiox_task_settled_credits",
    "Credits of done tasks' reservations, by task type and outcome (charged, returned, uncharged)",
    ["type", "outcome"],
)


def record_repair_backlog(states: Iterable[ChargeState]) -> None:
    found = list(states)
    for state in OWED:
        REPAIR_BACKLOG.labels(state.value).set(sum(1 for s in found if s is state))
    REPAIR_LAST_RUN.set_to_current_time()


def record_settlement(task_type: str, reserved: int, charged: int, uncharged: int) -> None:
    SETTLED_CREDITS.labels(task_type, "charged").inc(charged)
    SETTLED_CREDITS.labels(task_type, "returned").inc(reserved - charged)
    SETTLED_CREDITS.labels(task_type, "uncharged").inc(uncharged)
