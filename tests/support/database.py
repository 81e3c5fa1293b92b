"""A real PostgreSQL for tests: a fresh database on DATABASE_URL's server when that is set, otherwise an
embedded server in a temporary folder."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from devstack.postgres import EmbeddedPostgres, ensure_database, wait_until_ready
from tests.support.ports import free_port


def _admin_url(url: str) -> str:
    return url.rsplit("/", 1)[0] + "/postgres"


def drop_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(_admin_url(url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def new_database(server_url: str, prefix: str = "studiox_test") -> str:
    """Create an empty database on the server behind `server_url`; returns its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    ensure_database(_admin_url(server_url), name)
    return server_url.rsplit("/", 1)[0] + "/" + name


@contextmanager
def postgres_server(tmp: Path) -> Iterator[str]:
    """Yields a server URL (its `postgres` database)."""
    external = os.environ.get("DATABASE_URL")
    if external:
        yield _admin_url(external)
        return
    embedded = EmbeddedPostgres(tmp / "pgdata", free_port())
    proc = embedded.start(tmp / "postgres.log")
    try:
        url = embedded.url("postgres")
        wait_until_ready(url)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
