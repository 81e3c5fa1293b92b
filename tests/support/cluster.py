"""All five services in this process, on free ports, against a real PostgreSQL (integration tests)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from typing import Any

import grpc
import psycopg

from services.kit.access import INTERNAL_TOKEN_HEADER
from services.kit.migrate import upgrade_all
from services.kit.server import RunningServer, start_server
from services.kit.settings import SERVICE_NAMES, ServiceName, Settings
from services.kit.transport import RECONNECT_OPTIONS
from services.scheduler.config import SchedulerConfig
from tests.support.ports import free_port
from tests.support.tokens import AUTHORIZED_PARTY, DEFAULT_KEY, ISSUER

INTERNAL_TOKEN = "test-internal-token"


def make_settings(database_url: str, **overrides: Any) -> Settings:
    addrs = {f"{name}_service_addr": f"127.0.0.1:{free_port()}" for name in SERVICE_NAMES}
    values: dict[str, Any] = {
        "database_url": database_url,
        "app_env": "test",
        "internal_service_token": INTERNAL_TOKEN,
        "log_format": "text",
        "shutdown_grace_seconds": 5.0,
        "clerk_issuer": ISSUER,
        "clerk_jwt_key": DEFAULT_KEY.public_pem,
        "clerk_authorized_parties": [AUTHORIZED_PARTY],
        **addrs,
        **overrides,
    }
    return Settings(_env_file=None, **values)


@dataclass
class Cluster:
    settings: Settings
    servers: dict[ServiceName, RunningServer] = field(default_factory=dict)
    _channels: dict[ServiceName, grpc.aio.Channel] = field(default_factory=dict)

    async def start(self, name: ServiceName) -> RunningServer:
        module = importlib.import_module(f"services.{name}.wiring")
        if name == "scheduler":
            # Quiet: it must not claim or repair the tasks other tests are looking at.
            spec = module.build_spec(self.settings, quiet_scheduler())
        else:
            spec = module.build_spec(self.settings)
        server = await start_server(spec, self.settings, self.settings.service_addr(name))
        self.servers[name] = server
        channel = self._channels.get(name)
        if channel is not None:
            # A restart: the tests' channel failed while the service was down. It is connected
            # again before the next test uses it, instead of failing fast until it reconnects.
            await asyncio.wait_for(channel.channel_ready(), timeout=10)
        return server

    async def stop(self, name: ServiceName, grace: float = 1.0) -> None:
        server = self.servers.pop(name)
        await server.stop(grace)

    @contextlib.asynccontextmanager
    async def stopped(self, name: ServiceName) -> AsyncIterator[None]:
        """`name` down for the block, then serving again (and reachable) whatever the block did."""
        await self.stop(name)
        try:
            yield
        finally:
            await self.start(name)

    def sql(self, statement: str, *params: object) -> list[tuple[Any, ...]]:
        """Run one statement on the cluster's database (autocommit); its rows, if any."""
        with psycopg.connect(self.settings.database_url, autocommit=True) as conn:
            cursor = conn.execute(statement, params)
            return cursor.fetchall() if cursor.description else []

    def scalar(self, statement: str, *params: object) -> int:
        rows = self.sql(statement, *params)
        assert rows, statement
        return int(rows[0][0])

    def channel(self, name: ServiceName) -> grpc.aio.Channel:
        if name not in self._channels:
            self._channels[name] = grpc.aio.insecure_channel(
                self.settings.service_addr(name), options=RECONNECT_OPTIONS
            )
        return self._channels[name]

    async def close(self) -> None:
        """Every channel and server closed, even when one of them fails to."""
        results = [await _settled(channel.close()) for channel in self._channels.values()]
        results += [await _settled(self.stop(name)) for name in list(self.servers)]
        for result in results:
            if isinstance(result, BaseException):
                raise result


async def _settled(step: Awaitable[None]) -> BaseException | None:
    try:
        await step
    except Exception as exc:
        return exc
    return None


def quiet_scheduler(**overrides: Any) -> SchedulerConfig:
    values: dict[str, Any] = {
        "claim_limit": 0,
        "process_every_seconds": 3600,
        "repair_every_seconds": 3600,
        "expire_every_seconds": 3600,
        "instance": "cluster",
        **overrides,
    }
    return SchedulerConfig(_env_file=None, **values)


def internal_metadata() -> tuple[tuple[str, str], ...]:
    return ((INTERNAL_TOKEN_HEADER, INTERNAL_TOKEN),)


async def start_cluster(settings: Settings) -> Cluster:
    await asyncio.to_thread(upgrade_all, settings)
    cluster = Cluster(settings)
    try:
        for name in SERVICE_NAMES:
            await cluster.start(name)
    except BaseException:
        await cluster.close()  # the servers already started, not left serving in this process
        raise
    return cluster
