"""Task settlement as Prometheus gauges (how many, never which: task and user ids stay out of
labels)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Gauge

from services.task.domain import ChargeState

# Repair runs every few minutes and settles what it finds, so a backlog that stays above zero
# across runs means settlements keep failing (deploy/prometheus/rules.yml: RepairBacklog).
REPAIR_BACKLOG = Gauge(
    "studiox_repair_backlog",
    "Tasks owing a settlement with the ledger that the latest repair pass found, by charge state "
    "(reserved: abandoned reservation; refunding: refund owed)",
    ["state"],
)
# With several task replicas only the one serving a pass updates the gauge: the rules read the
# backlog of the replica with the latest pass.
REPAIR_LAST_RUN = Gauge(
    "studiox_repair_last_run_timestamp_seconds", "When this process last ran a repair pass"
)
OWED = (ChargeState.RESERVED, ChargeState.REFUNDING)


def record_repair_backlog(states: Iterable[ChargeState]) -> None:
    found = list(states)
    for state in OWED:
        REPAIR_BACKLOG.labels(state.value).set(sum(1 for s in found if s is state))
    REPAIR_LAST_RUN.set_to_current_time()
