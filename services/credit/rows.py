"""How the credit tables' rows read (schema `credit`): their column lists, and the domain types a
row becomes. Shared by the store modules whose statements return those rows (store.py,
entry_store.py, grant_store.py); no statements here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from services.credit.domain import (
    Account,
    Category,
    CloseReason,
    Entry,
    EntryKind,
    Grant,
    GrantDelta,
    PlanTerms,
)
from services.kit.sql import Row

ENTRY_COLUMNS = (
    "id, user_id, kind, idempotency_key, amount, allowance_delta, purchased_delta, bonus_delta, "
    "owed_delta, usage, reference, description, balance_after, created_at, actor, reason"
)
ACCOUNT_COLUMNS = (
    "user_id, plan_name, monthly_allowance, is_unlimited, features, allowance_balance, "
    "purchased_balance, bonus_balance, owed, used_this_period, period_started_at, credit_reset_at"
)
GRANT_COLUMNS = (
    "id, user_id, category, amount, remaining, priority, effective_at, expires_at, closed_at, "
    "closed_reason, source_key, reference, clawed, created_at"
)


def fields_of(row: Row | Mapping[str, Any]) -> Mapping[str, Any]:
    """A row's columns by name: a statement's row (services.kit.sql), or a mapping (the lean
    path's rows)."""
    return row if isinstance(row, Mapping) else cast(Mapping[str, Any], row._asdict())


def to_entry(row: Row | Mapping[str, Any], grants: Sequence[GrantDelta] = ()) -> Entry:
    m = fields_of(row)
    return Entry(
        id=m["id"],
        user_id=m["user_id"],
        kind=EntryKind(m["kind"]),
        idempotency_key=m["idempotency_key"],
        amount=m["amount"],
        allowance_delta=m["allowance_delta"],
        purchased_delta=m["purchased_delta"],
        bonus_delta=m["bonus_delta"],
        owed_delta=m["owed_delta"],
        usage=m["usage"],
        reference=m["reference"],
        description=m["description"],
        balance_after=m["balance_after"],
        created_at=m["created_at"],
        actor=m["actor"],
        reason=m["reason"],
        grants=tuple(grants),
    )


def to_account(row: Row | Mapping[str, Any]) -> Account:
    m = fields_of(row)
    return Account(
        user_id=m["user_id"],
        terms=PlanTerms(
            plan_name=m["plan_name"],
            monthly_allowance=m["monthly_allowance"],
            is_unlimited=m["is_unlimited"],
            features=tuple(m["features"]),
        ),
        allowance_balance=m["allowance_balance"],
        purchased_balance=m["purchased_balance"],
        bonus_balance=m["bonus_balance"],
        owed=m["owed"],
        used_this_period=m["used_this_period"],
        period_started_at=m["period_started_at"],
        credit_reset_at=m["credit_reset_at"],
    )


def to_grant(row: Row | Mapping[str, Any]) -> Grant:
    m = fields_of(row)
    return Grant(
        id=m["id"],
        user_id=m["user_id"],
        category=Category(m["category"]),
        amount=m["amount"],
        remaining=m["remaining"],
        priority=m["priority"],
        effective_at=m["effective_at"],
        expires_at=m["expires_at"],
        closed_at=m["closed_at"],
        closed_reason=CloseReason(m["closed_reason"]) if m["closed_reason"] else None,
        source_key=m["source_key"],
        reference=m["reference"],
        clawed=m["clawed"],
        created_at=m["created_at"],
    )
