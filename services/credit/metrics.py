"""Credit movements as Prometheus counters (what moved, not who: user ids stay out of labels)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec

from prometheus_client import Counter, Gauge

from services.credit.domain import Posting
from services.kit.errors import DomainError

P = ParamSpec("P")

CREDITS = Counter(
    "studiox_credits_total",
    "Credits moved by ledger entries applied (usage for charges and refunds)",
    ["kind"],
)
ENTRIES = Counter("studiox_ledger_entries_total", "Ledger entries applied", ["kind"])
REFUSED_CHARGES = Counter("studiox_charges_refused_total", "Charges refused", ["reason"])
LEDGER_VERIFICATIONS = Counter(
    "studiox_ledger_verifications_total",
    "Ledger verifications (VerifyLedger, `studiox ledger verify`) by outcome: ok or mismatch",
    ["outcome"],
)
LEDGER_DIFFERENCES = Gauge(
    "studiox_ledger_differences",
    "Accounts whose balance did not equal the sum of their entries (or had a negative bucket) at "
    "this process's latest verification",
)


def record(posting: Posting) -> None:
    if not posting.applied:
        return
    kind = posting.entry.kind.value
    ENTRIES.labels(kind).inc()
    amount = abs(posting.entry.usage) if kind in ("charge", "refund") else abs(posting.entry.amount)
    CREDITS.labels(kind).inc(amount)


def record_verification(differences: int) -> None:
    LEDGER_VERIFICATIONS.labels("mismatch" if differences else "ok").inc()
    LEDGER_DIFFERENCES.set(differences)


def counted(
    *, refusals: bool = False
) -> Callable[[Callable[P, Awaitable[Posting]]], Callable[P, Awaitable[Posting]]]:
    """Counts what a use case moved, and with `refusals` what it refused, by reason."""

    def wrap(use_case: Callable[P, Awaitable[Posting]]) -> Callable[P, Awaitable[Posting]]:
        @functools.wraps(use_case)
        async def counted(*args: P.args, **kwargs: P.kwargs) -> Posting:
            try:
                posting = await use_case(*args, **kwargs)
            except DomainError as refused:
                if refusals:
                    REFUSED_CHARGES.labels(refused.kind.value).inc()
                raise
            record(posting)
            return posting

        return counted

    return wrap
