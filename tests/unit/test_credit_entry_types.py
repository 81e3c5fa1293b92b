"""A transaction's `type` on the wire: the seed backend's vocabulary for the ledger's entries."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.credit.domain import Entry, EntryKind
from services.credit.messages import entry_to_proto, entry_type


def entry(kind: EntryKind, key: str, allowance: int = 0, purchased: int = 0) -> Entry:
    return Entry(
        id=1,
        user_id="user_1",
        kind=kind,
        idempotency_key=key,
        amount=allowance + purchased,
        allowance_delta=allowance,
        purchased_delta=purchased,
        usage=0,
        reference="",
        description="",
        balance_after=10,
        created_at=datetime(2026, 1, 31, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("kind", "key", "allowance", "purchased", "expected"),
    [
        (EntryKind.CHARGE, "task:abc", -5, 0, "credit_use"),
        (EntryKind.REFUND, "refund:task:abc", 5, 0, "refund"),
        (EntryKind.EXPIRY, "reset:2026-02-01T00:00:00:expiry", -3, 0, "expiry"),
        (EntryKind.GRANT, "reset:2026-02-01T00:00:00:grant", 10, 0, "monthly_reset"),
        (EntryKind.GRANT, "signup:user_1:grant", 10, 0, "credit_add"),
        (EntryKind.GRANT, "stripe:plan:1:pro:1769817600:grant", 100, 0, "credit_add"),
        (EntryKind.GRANT, "stripe:checkout:cs_1", 0, 50, "credit_purchase"),
    ],
)
def test_seed_vocabulary(
    kind: EntryKind, key: str, allowance: int, purchased: int, expected: str
) -> None:
    assert entry_type(entry(kind, key, allowance, purchased)) == expected
    assert entry_to_proto(entry(kind, key, allowance, purchased)).type == expected
