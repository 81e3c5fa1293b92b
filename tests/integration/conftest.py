from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from devstack.stripe_emulator import StripeEmulator
from tests.support.billing import BillingClient, start_paid_cluster
from tests.support.cluster import Cluster, make_settings, start_cluster
from tests.support.credit import CreditClient
from tests.support.database import new_database
from tests.support.stack import adopt_orphans


@pytest.fixture(scope="session", autouse=True)
def _processes_end_with_the_session() -> None:
    """Every process these tests start ends with the session, orphans and SIGTERM included."""
    adopt_orphans()


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
def stripe_emulator() -> Iterator[StripeEmulator]:
    emulator = StripeEmulator()
    with emulator.running():
        yield emulator


@pytest.fixture(scope="session")
async def paid_cluster(pg_server: str, stripe_emulator: StripeEmulator) -> AsyncIterator[Cluster]:
    """Credit, user and billing with Stripe configured (pointed at devstack.stripe_emulator)."""
    running = await start_paid_cluster(
        make_settings(new_database(pg_server), **stripe_emulator.settings())
    )
    yield running
    await running.close()


@pytest.fixture
def billing(paid_cluster: Cluster, stripe_emulator: StripeEmulator) -> BillingClient:
    return BillingClient(paid_cluster, stripe_emulator)
