"""Alembic, once for all services: each service keeps its revisions in services/<svc>/migrations and
its version table in its own schema. Concurrent runs (replicas starting together) serialize on an
advisory lock, and rerunning is a no-op."""

from __future__ import annotations

import importlib
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import Connection, create_engine, text

from services.kit.db import SCHEMAS
from services.kit.settings import SERVICE_NAMES, ServiceName, Settings

VERSION_TABLE = "alembic_version"


def migrations_dir(service: ServiceName) -> Path:
    package = importlib.import_module(f"services.{service}")
    assert package.__file__ is not None
    return Path(package.__file__).parent / "migrations"


def upgrade(service: ServiceName, settings: Settings, revision: str = "head") -> None:
    schema = SCHEMAS[service]
    engine = create_engine(settings.sqlalchemy_url, pool_size=1, max_overflow=0)
    try:
        with engine.begin() as conn:
            conn.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"migrate:{schema}"}
            )
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            config = Config()
            config.set_main_option("script_location", str(migrations_dir(service)))
            config.attributes["connection"] = conn
            config.attributes["schema"] = schema
            command.upgrade(config, revision)
    finally:
        engine.dispose()


def upgrade_all(settings: Settings, services: tuple[ServiceName, ...] = SERVICE_NAMES) -> None:
    for service in services:
        upgrade(service, settings)


def run_env() -> None:
    """Body of every service's migrations/env.py."""
    conn: Connection = context.config.attributes["connection"]
    schema: str = context.config.attributes["schema"]
    context.configure(
        connection=conn,
        version_table=VERSION_TABLE,
        version_table_schema=schema,
        target_metadata=None,
    )
    with context.begin_transaction():
        context.run_migrations()
