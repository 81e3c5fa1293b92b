from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.cluster import Cluster, make_settings, start_cluster
from tests.support.credit import CreditClient
from tests.support.database import new_database


@pytest.fixture(scope="session")
async def cluster(pg_server: str) -> AsyncIterator[Cluster]:
    """Every service, in-process, over one migrated database shared by the session."""
    running = await start_cluster(make_settings(new_database(pg_server)))
    yield running
    await running.close()


@pytest.fixture
def credit(cluster: Cluster) -> CreditClient:
    return CreditClient(cluster.channel("credit"))
