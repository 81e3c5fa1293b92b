"""Service layer of the credit service: an account's plan and its periods. SetPlan sets the terms
and, with a new period, closes the open allowance and grants the plan's; the monthly reset and
grant expiry are set-based batches over every account (batch_store.reset_due,
batch_store.expire_due)."""

from __future__ import annotations

from datetime import datetime

from services.credit import batch_store
from services.credit.domain import (
    DEFAULT_PRIORITY,
    Account,
    Category,
    Change,
    CloseReason,
    EntryKind,
    NewGrant,
    PlanTerms,
    add_months,
)
from services.credit.steps import UseCase, locked
from services.kit.sql import Connection


class Plans(UseCase):
    async def set_plan(
        self,
        *,
        user_id: str,
        terms: PlanTerms,
        key: str,
        start_new_period: bool,
        period_end: datetime | None,
        now: datetime,
    ) -> tuple[Account, bool]:
        """The account's terms; with a new period, the open allowance expires and the plan's
        allowance is granted, both as entries keyed by `key`."""
        async with self._db.transaction() as conn:
            created = await self._records.create_account(conn, user_id, terms)
            account = await locked(conn, user_id, self._records)
            if (
                not created
                and await self._entries.find_entry(conn, user_id, f"{key}:grant") is not None
            ):
                return account, False
            await self._records.set_terms(conn, user_id, terms)
            if start_new_period or created:
                await self._start_period(
                    conn, account, terms, key, period_end or add_months(now, 1), now
                )
            updated = await self._records.get_account(conn, user_id)
        assert updated is not None
        return updated, True

    async def _start_period(
        self,
        conn: Connection,
        account: Account,
        terms: PlanTerms,
        key: str,
        period_end: datetime,
        now: datetime,
    ) -> None:
        allowance = [
            g
            for g in await self._grants.open_grants(conn, account.user_id)
            if g.category is Category.ALLOWANCE
        ]
        if account.allowance_balance > 0:
            await self._entries.post(
                conn,
                user_id=account.user_id,
                kind=EntryKind.EXPIRY,
                key=f"{key}:expiry",
                changes=[Change(g, -g.remaining, CloseReason.RESET) for g in allowance],
                description="Unused allowance expired (plan change)",
            )
        elif allowance:
            await self._grants.close_grants(conn, [g.id for g in allowance], CloseReason.RESET)
        fresh = 0 if terms.is_unlimited else terms.monthly_allowance
        description = f"{terms.plan_name} plan allowance"
        if fresh > 0:
            new = NewGrant(Category.ALLOWANCE, fresh, DEFAULT_PRIORITY[Category.ALLOWANCE], None)
            await self._add_grant(
                conn,
                account,
                new,
                key=f"{key}:grant",
                description=description,
                effective_at=now,
            )
        else:
            # Still recorded: the entry is what makes a repeat of this plan change a no-op.
            await self._entries.post(
                conn,
                user_id=account.user_id,
                kind=EntryKind.GRANT,
                key=f"{key}:grant",
                changes=[],
                description=description,
            )
        await self._records.start_period(conn, account.user_id, now, period_end)

    async def reset_due(self, *, as_of: datetime, batch_size: int) -> tuple[int, bool]:
        async with self._db.transaction() as conn:
            return await batch_store.reset_due(conn, as_of=as_of, batch_size=batch_size)

    async def expire_due(self, *, as_of: datetime, batch_size: int) -> tuple[int, int, bool]:
        async with self._db.transaction() as conn:
            return await batch_store.expire_due(conn, as_of=as_of, batch_size=batch_size)
