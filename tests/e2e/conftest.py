from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

from devstack.stripe_emulator import StripeEmulator
from devstack.webhook_receiver import WebhookReceiver
from services.kit.settings import DEV_WEBHOOK_SIGNING_SECRET
from tests.support.database import drop_database, new_database
from tests.support.dirs import server_tempdir
from tests.support.stack import Stack, adopt_orphans


@pytest.fixture(scope="session", autouse=True)
def _processes_end_with_the_session() -> None:
    """Every process these tests start ends with the session, orphans and SIGTERM included."""
    adopt_orphans()


@pytest.fixture(scope="session")
def stripe() -> Iterator[StripeEmulator]:
    """The Stripe the e2e stack pays through (devstack.stripe_emulator on 127.0.0.1)."""
    emulator = StripeEmulator()
    with emulator.running():
        yield emulator


@pytest.fixture(scope="session")
def webhook_receiver() -> Iterator[WebhookReceiver]:
    """The operator's endpoint the e2e stack delivers its outbound webhooks to."""
    receiver = WebhookReceiver(DEV_WEBHOOK_SIGNING_SECRET)
    with receiver.running():
        yield receiver


def webhook_environment(receiver: WebhookReceiver) -> dict[str, str]:
    """Deliveries to the test receiver, retried quickly; crossings taken to billing every second."""
    return {
        "WEBHOOK_ENDPOINTS": receiver.url,
        "WEBHOOK_BACKOFF_BASE_SECONDS": "0.5",
        "WEBHOOK_BACKOFF_MAX_SECONDS": "2",
        "SCHEDULER_TOP_UP_EVERY_SECONDS": "1",
    }


@pytest.fixture(scope="session")
def stack(stripe: StripeEmulator, webhook_receiver: WebhookReceiver) -> Iterator[Stack]:
    """The whole stack from nothing: a new state folder (embedded PostgreSQL initialized there), or a
    new database on DATABASE_URL's server when that is set."""
    database_url = None
    if os.environ.get("DATABASE_URL"):
        database_url = new_database(os.environ["DATABASE_URL"])
    with server_tempdir("stack") as folder:
        try:
            running = Stack(
                folder,
                database_url,
                extra_env={**stripe.environment(), **webhook_environment(webhook_receiver)},
            )
            try:
                running.start()
                yield running
            finally:
                running.close()
        finally:
            if database_url:
                drop_database(database_url)


@pytest.fixture
def http(stack: Stack) -> Iterator[httpx.Client]:
    with stack.client() as client:
        yield client
