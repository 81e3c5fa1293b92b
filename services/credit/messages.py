"""The ledger's objects as messages (entries, grants, an account's credits): one rendering for the
user API (api.py) and support staff's (admin.py)."""

from __future__ import annotations

from collections.abc import Sequence

from services.credit.domain import Account, Category, Entry, EntryKind, Grant
from services.kit.proto_time import set_timestamp, to_timestamp
from studiox.credit.v1 import credit_pb2

# A transaction's `type` on the wire, in the seed backend's words (grants are told apart below).
_TYPES = {
    EntryKind.CHARGE: "credit_use",
    EntryKind.REFUND: "refund",
    EntryKind.EXPIRY: "expiry",
    EntryKind.VOID: "void",
    EntryKind.CLAWBACK: "clawback",
    EntryKind.REINSTATE: "reinstatement",
}
# Idempotency keys of the monthly reset's entries start with this (batch_store.reset_due writes them).
_RESET_KEY_PREFIX = "reset:"


def entry_type(entry: Entry) -> str:
    """Purchased credits, the monthly renewal and other allowance grants (sign-up, plan change,
    new paid period) are all grants in the ledger; the seed named them apart."""
    if entry.kind is not EntryKind.GRANT:
        return _TYPES[entry.kind]
    # A purchase that only settled a debt still names its (purchased) grant.
    if entry.purchased_delta > 0 or any(g.category is Category.PURCHASED for g in entry.grants):
        return "credit_purchase"
    if entry.idempotency_key.startswith(_RESET_KEY_PREFIX):
        return "monthly_reset"
    return "credit_add"


def entry_to_proto(entry: Entry) -> credit_pb2.LedgerEntry:
    return credit_pb2.LedgerEntry(
        id=str(entry.id),
        type=entry_type(entry),
        amount=entry.amount,
        allowance_delta=entry.allowance_delta,
        purchased_delta=entry.purchased_delta,
        reference=entry.reference,
        description=entry.description,
        created_at=to_timestamp(entry.created_at),
        balance_after=entry.balance_after,
        usage=entry.usage,
        grants=[
            credit_pb2.GrantChange(
                grant_id=str(g.grant_id), category=g.category.value, amount=g.delta
            )
            for g in entry.grants
        ],
        owed_delta=entry.owed_delta,
    )


def grant_to_proto(
    grant: Grant, account: Account, *, audit: bool = False
) -> credit_pb2.CreditGrant:
    """A grant; the allowance shows the next reset as its expiry (the reset closes it)."""
    message = credit_pb2.CreditGrant(
        id=str(grant.id),
        category=grant.category.value,
        amount=grant.amount,
        remaining=grant.remaining,
        priority=grant.priority,
    )
    set_timestamp(message.effective_at, grant.effective_at)
    expires = grant.expires_at
    if expires is None and grant.category is Category.ALLOWANCE and grant.is_open:
        expires = account.credit_reset_at
    if expires is not None:
        set_timestamp(message.expires_at, expires)
    if audit:
        if grant.closed_at is not None:
            set_timestamp(message.closed_at, grant.closed_at)
        message.closed_reason = grant.closed_reason.value if grant.closed_reason else ""
        message.clawed = grant.clawed
    return message


def credits_to_proto(
    account: Account, grants: Sequence[Grant] = (), reserved: int = 0
) -> credit_pb2.Credits:
    return credit_pb2.Credits(
        reserved_credits=reserved,
        # Held credits were taken from the grants, so what is spendable is currentCredits.
        available_credits=account.current_credits,
        grants=[grant_to_proto(g, account) for g in grants],
        bonus_credits=account.bonus_balance,
        owed_credits=account.owed,
        user_id=account.user_id,
        current_credits=account.current_credits,
        allowance_credits=account.allowance_balance,
        purchased_credits=account.purchased_balance,
        monthly_allowance=account.terms.monthly_allowance,
        plan_name=account.terms.plan_name,
        is_unlimited=account.terms.is_unlimited,
        credits_used_this_month=account.used_this_period,
        credit_reset_at=to_timestamp(account.credit_reset_at),
    )
