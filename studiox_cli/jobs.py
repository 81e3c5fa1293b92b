"""`studiox jobs run JOB`: a scheduler job now, through the scheduler's own code path (recorded in
job_runs like a scheduled run)."""

from __future__ import annotations

import argparse
import sys

from services.kit.settings import ServiceName
from studiox_cli.common import (
    CommandError,
    database_failure,
    local_settings,
    require_database,
    require_service,
)

# The service each scheduler job calls.
JOB_SERVICES: dict[str, ServiceName] = {
    "credit-reset": "credit",
    "credit-expiry": "credit",
    "process-tasks": "task",
    "repair": "task",
    "auto-top-up": "billing",
    "grant-warnings": "credit",
}


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    jobs = sub.add_parser("jobs", help="scheduler jobs")
    jobs_sub = jobs.add_subparsers(dest="jobs_command", required=True)
    run_job = jobs_sub.add_parser(
        "run", help="run a job now, through the scheduler's own code path (recorded in job_runs)"
    )
    run_job.add_argument("job", choices=list(JOB_SERVICES))
    run_job.set_defaults(func=run)


def run(ns: argparse.Namespace) -> int:
    import asyncio

    import psycopg

    from services.kit.clients import ServiceChannels
    from services.kit.db import Database
    from services.kit.logs import configure_logging
    from services.scheduler.config import SchedulerConfig
    from services.scheduler.jobs import JobRun, JobRunner, Jobs

    settings = local_settings("jobs")
    require_database(settings)
    require_service(settings, JOB_SERVICES[ns.job])
    configure_logging("jobs", settings.log_level, "text", stream=sys.stderr)
    config = SchedulerConfig(instance="cli")

    async def go() -> JobRun:
        db, channels = Database(settings, pool_size=2), ServiceChannels(settings)
        try:
            return await JobRunner(db, Jobs(channels, config), config.instance).run(
                ns.job, trigger="manual"
            )
        finally:
            await channels.close()
            await db.close()

    try:
        result = asyncio.run(go())
    except psycopg.Error as exc:
        # e.g. the scheduler's tables do not exist yet (`studiox migrate scheduler`).
        raise CommandError(f"recording the job run failed: {database_failure(exc)}") from None
    print(
        f"{result.job}: {result.outcome} {result.counts}"
        + (f" ({result.error})" if result.error else "")
    )
    return 0 if result.outcome == "ok" else 1
