"""Billing tables and queries (schema `billing`)."""

from __future__ import annotations

from sqlalchemy import ARRAY, Integer, MetaData, Text, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.billing.domain import Plan
from services.kit.db import SCHEMAS


class Base(DeclarativeBase):
    metadata = MetaData(schema=SCHEMAS["billing"])


class PlanRow(Base):
    __tablename__ = "plans"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    price_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(Text)
    billing_interval: Mapped[str] = mapped_column(Text)
    monthly_credits: Mapped[int] = mapped_column(Integer)
    is_unlimited: Mapped[bool]
    features: Mapped[list[str]] = mapped_column(ARRAY(Text))
    sort_order: Mapped[int] = mapped_column(Integer)

    def to_domain(self) -> Plan:
        return Plan(
            id=self.id,
            name=self.name,
            price_cents=self.price_cents,
            currency=self.currency,
            interval=self.billing_interval,
            monthly_credits=self.monthly_credits,
            is_unlimited=self.is_unlimited,
            features=tuple(self.features),
        )


async def list_plans(session: AsyncSession) -> list[Plan]:
    rows = await session.scalars(select(PlanRow).order_by(PlanRow.sort_order))
    return [row.to_domain() for row in rows]


async def get_plan(session: AsyncSession, plan_id: str) -> Plan | None:
    row = await session.get(PlanRow, plan_id)
    return row.to_domain() if row else None
