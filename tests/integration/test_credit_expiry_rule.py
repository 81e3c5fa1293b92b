"""The expiry batch's SQL (services.credit.batch_store.expire_due) against the Python rule it
applies (`Grant.is_live`): on random grant sets, the grants it closes are exactly those the rule
says have lapsed by `as_of`, and the balance left is what the live grants hold. The batches run
through the typed client the scheduler uses (services.credit.client), on the real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.credit.client import CreditClient as TypedCreditClient
from services.credit.domain import Category, CloseReason
from services.kit.clients import ServiceChannels
from services.kit.errors import DomainError, ErrorKind
from tests.integration.test_credit_grants import grants_of
from tests.support.cluster import Cluster
from tests.support.credit import FREE, CreditClient

_GRANT = st.fixed_dictionaries(
    {
        "category": st.sampled_from(["purchased", "promotional", "compensation"]),
        "amount": st.integers(1, 9),
        # hours from now; None: never expires
        "expires": st.one_of(st.none(), st.integers(1, 72)),
    }
)


@pytest.fixture
async def typed(cluster: Cluster) -> AsyncIterator[TypedCreditClient]:
    channels = ServiceChannels(cluster.settings)
    yield TypedCreditClient(channels, timeout=60)
    await channels.close()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    grants=st.lists(_GRANT, min_size=1, max_size=6),
    spend=st.integers(0, 30),
    hours=st.integers(1, 80),
)
async def test_expiry_closes_what_the_python_rule_says_has_lapsed(
    cluster: Cluster,
    credit: CreditClient,
    typed: TypedCreditClient,
    grants: list[dict[str, Any]],
    spend: int,
    hours: int,
) -> None:
    user = await credit.open_account(FREE)
    now = datetime.now(UTC)
    for i, spec in enumerate(grants):
        expires = spec["expires"]
        await typed.grant(
            user,
            spec["amount"],
            Category(spec["category"]),
            key=f"g{i}",
            expires_at=now + timedelta(hours=expires) if expires else None,
        )
    if spend:
        await _spend(typed, user, spend)
    as_of = now + timedelta(hours=hours, minutes=1)
    before = {g.id: g for g in grants_of(cluster, user) if g.is_open}
    lapsed = {i for i, g in before.items() if not g.is_live(as_of)}

    while (await typed.expire_due(batch_size=500, as_of=as_of)).more:
        pass

    after = {g.id: g for g in grants_of(cluster, user)}
    expired = {i for i in before if after[i].closed_reason is CloseReason.EXPIRED}
    assert expired == lapsed
    assert all(after[i].remaining == 0 for i in lapsed)
    live = sum(g.remaining for i, g in before.items() if i not in lapsed)
    assert (await typed.account(user)).current_credits == live
    report = await typed.verify()
    assert [d for d in report.differences if d.user_id == user] == []


async def _spend(typed: TypedCreditClient, user: str, amount: int) -> None:
    """A charge, or (too few credits) nothing: a refused charge is refused whole."""
    try:
        await typed.charge(user, amount, key="spend", feature="image_analysis")
    except DomainError as refused:
        if refused.kind is not ErrorKind.INSUFFICIENT_CREDITS:
            raise
