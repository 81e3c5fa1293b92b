"""Refunds as a step of a use case: credits given back to the grants a charge (or a reservation's
hold) came from, last-spent first, what is owed settled first. Used by Ledger.refund and by
Reservations.settle, inside their transaction, after they took the account lock."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from services.credit import entry_store, grant_store
from services.credit.domain import Account, Category, Change, Entry, EntryKind, Grant
from services.credit.grant_rules import refund_returns, refund_split, returned_grant, settle_owed
from services.credit.statements import EntryStore, GrantStore
from services.kit.errors import InvalidState
from services.kit.sql import Connection


async def give_back(
    conn: Connection,
    account: Account,
    charged: Entry,
    amount: int,
    key: str,
    description: str,
    now: datetime,
    entry_records: EntryStore = entry_store,
    grant_records: GrantStore = grant_store,
) -> Entry:
    """Give back `amount` of a charge (0: all that is left of it) to the grants it came from,
    last-spent first, as one refund entry under `key`. The caller holds the account lock."""
    user_id = account.user_id
    refunded_a, refunded_p, refunded_usage = await entry_records.refunded_of(conn, charged.id)
    left_usage = charged.usage - refunded_usage
    if left_usage <= 0:
        raise InvalidState("Charge already refunded")
    # A charge that took no credits (an unlimited plan's) gives back usage only; one that
    # took credits gives them back even if the plan became unlimited since.
    if charged.amount == 0:
        back_usage = left_usage if amount == 0 else min(amount, left_usage)
        return await entry_records.post(
            conn,
            user_id=user_id,
            kind=EntryKind.REFUND,
            key=key,
            changes=[],
            usage=-back_usage,
            used_delta=-back_usage,
            reference=charged.reference,
            description=description,
            refund_of=charged.id,
        )
    sources = await _refund_sources(
        conn, charged, amount, (refunded_a, refunded_p), entry_records, grant_records
    )
    changes: list[Change] = []
    shares: list[tuple[int | None, Category, int]] = []
    for source, category, back in sources:
        target = source
        if source is None or not source.is_open:
            target = await grant_records.create_grant(
                conn,
                user_id,
                returned_grant(source, category, back, now),
                source_key=f"{key}:{source.id if source else category.value}",
            )
        assert target is not None
        changes.append(Change(target, back))
        shares.append((source.id if source else None, category, back))
    total = sum(c.delta for c in changes)
    settled = settle_owed(account.owed, total)
    entry = await entry_records.post(
        conn,
        user_id=user_id,
        kind=EntryKind.REFUND,
        key=key,
        changes=_less(changes, settled),
        owed_delta=-settled,
        usage=-total,
        used_delta=-total,
        reference=charged.reference,
        description=description,
        refund_of=charged.id,
    )
    await entry_records.record_refund_shares(conn, charged.id, entry.id, shares)
    return entry


async def _refund_sources(
    conn: Connection,
    charged: Entry,
    amount: int,
    refunded: tuple[int, int],
    entry_records: EntryStore,
    grant_records: GrantStore,
) -> list[tuple[Grant | None, Category, int]]:
    """(source grant, its category, credits back) for a refund of `amount` (0: all that is
    left). A charge made before grants existed has no grants: its buckets stand in."""
    if not charged.grants:
        back_a, back_p = refund_split(
            -charged.allowance_delta, -charged.purchased_delta, *refunded, amount
        )
        parts = ((Category.PURCHASED, back_p), (Category.ALLOWANCE, back_a))
        return [(None, category, n) for category, n in parts if n > 0]
    left = await entry_records.left_of_charge(conn, charged.id)
    grants = await grant_records.grants_by_id(conn, list(left))
    returns = refund_returns([(grants[g], n) for g, n in left.items()], amount)
    return [(grant, grant.category, n) for grant, n in returns]


def _less(changes: Sequence[Change], settled: int) -> list[Change]:
    """`changes` (credits coming in) less `settled` of them, taken from the grants spent first."""
    out = []
    left = settled
    for change in sorted(changes, key=lambda c: c.grant.order_key()):
        cut = min(change.delta, left)
        left -= cut
        out.append(Change(change.grant, change.delta - cut, change.close))
    return out
