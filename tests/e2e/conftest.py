from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

from tests.support.database import drop_database, new_database
from tests.support.dirs import server_tempdir
from tests.support.stack import Stack
from tests.support.stripe_double import StripeDouble


@pytest.fixture(scope="session")
def stripe() -> Iterator[StripeDouble]:
    """The Stripe the e2e stack pays through (a local double on 127.0.0.1)."""
    double = StripeDouble()
    with double.running():
        yield double


@pytest.fixture(scope="session")
def stack(stripe: StripeDouble) -> Iterator[Stack]:
    """The whole stack from nothing: a new state folder (embedded PostgreSQL initialized there), or a
    new database on DATABASE_URL's server when that is set."""
    database_url = None
    if os.environ.get("DATABASE_URL"):
        database_url = new_database(os.environ["DATABASE_URL"])
    with server_tempdir("stack") as folder:
        running = Stack(folder, database_url, extra_env=stripe.environment())
        try:
            running.start()
            yield running
        finally:
            running.close()
            if database_url:
                drop_database(database_url)


@pytest.fixture
def http(stack: Stack) -> Iterator[httpx.Client]:
    with stack.client() as client:
        yield client
