"""Wiring of the scheduler process: it serves health (and StatusService) and runs the job loop as a
background task. It has no RPCs of its own (so no api.py); operators trigger jobs with
`studiox jobs run`."""

from __future__ import annotations

import asyncio

from services.kit.clients import ServiceChannels
from services.kit.db import Database
from services.kit.errors import Unavailable
from services.kit.server import ServiceSpec
from services.kit.settings import ServiceName, Settings
from services.kit.spec import ServiceExtras, database_service
from services.kit.status import UNREACHABLE, health_of
from services.scheduler.config import SchedulerConfig
from services.scheduler.jobs import JobRunner, Jobs
from services.scheduler.leader import LeaderLock
from services.scheduler.loop import SchedulerLoop

DEPENDENCIES: tuple[ServiceName, ...] = ("credit", "task")
PROBE_TIMEOUT_SECONDS = 1.5


async def _serving(channels: ServiceChannels, service: ServiceName) -> None:
    status = await health_of(channels.channel(service), PROBE_TIMEOUT_SECONDS)
    if status == UNREACHABLE:
        raise Unavailable(f"{service} unreachable")
    if status != "SERVING":
        raise Unavailable(f"{service} not serving")


def build_spec(settings: Settings, config: SchedulerConfig | None = None) -> ServiceSpec:
    config = config or SchedulerConfig()

    def extras(db: Database, channels: ServiceChannels) -> ServiceExtras:
        runner = JobRunner(db, Jobs(channels, config), config.instance)
        loop = SchedulerLoop(db, runner, LeaderLock(settings.libpq_url), config)

        async def probe() -> None:
            # SERVING only while the jobs could actually run.
            await db.ping()
            await asyncio.gather(*(_serving(channels, s) for s in DEPENDENCIES))

        return ServiceExtras(probe=probe, background=[loop.run])

    return database_service("scheduler", settings, lambda db, channels: [], extras=extras)
