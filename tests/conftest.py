from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.database import drop_database, new_database, postgres_server


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with postgres_server(tmp_path_factory.mktemp("pg")) as url:
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
