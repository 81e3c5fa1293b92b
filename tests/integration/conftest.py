from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.support.billing import BillingClient, start_paid_cluster
from tests.support.cluster import Cluster, make_settings, start_cluster
from tests.support.credit import CreditClient
from tests.support.database import new_database
from tests.support.stripe_double import StripeDouble


@pytest.fixture(scope="session")
async def cluster(pg_server: str) -> AsyncIterator[Cluster]:
    """Every service, in-process, over one migrated database shared by the session."""
    running = await start_cluster(make_settings(new_database(pg_server)))
    yield running
    await running.close()


@pytest.fixture
def credit(cluster: Cluster) -> CreditClient:
    return CreditClient(cluster.channel("credit"))


@pytest.fixture(scope="session")
def stripe_double() -> Iterator[StripeDouble]:
    double = StripeDouble()
    with double.running():
        yield double


@pytest.fixture(scope="session")
async def paid_cluster(pg_server: str, stripe_double: StripeDouble) -> AsyncIterator[Cluster]:
    """Credit, user and billing with Stripe configured (pointed at the local Stripe double)."""
    running = await start_paid_cluster(
        make_settings(new_database(pg_server), **stripe_double.settings())
    )
    yield running
    await running.close()


@pytest.fixture
def billing(paid_cluster: Cluster, stripe_double: StripeDouble) -> BillingClient:
    return BillingClient(paid_cluster, stripe_double)
