from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.database import drop_database, new_database, postgres_server
from tests.support.dirs import server_tempdir


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    with server_tempdir("pg") as folder, postgres_server(folder) as url:
        yield url


@pytest.fixture
def fresh_database(pg_server: str) -> Iterator[str]:
    """An empty database, dropped after the test."""
    url = new_database(pg_server)
    yield url
    drop_database(url)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
