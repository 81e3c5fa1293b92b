"""Scheduling rules, free of gRPC and SQL."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from services.kit.errors import InvalidInput

CREDIT_RESET = "credit-reset"
CREDIT_EXPIRY = "credit-expiry"
PROCESS_TASKS = "process-tasks"
REPAIR = "repair"
AUTO_TOP_UP = "auto-top-up"
GRANT_WARNINGS = "grant-warnings"
JOBS = (CREDIT_RESET, CREDIT_EXPIRY, PROCESS_TASKS, REPAIR, AUTO_TOP_UP, GRANT_WARNINGS)


def parse_daily_time(value: str) -> time:
    try:
        hours, minutes = (int(part) for part in value.split(":"))
        return time(hours, minutes)
    except ValueError:
        raise InvalidInput(f"daily time must be HH:MM, got {value!r}") from None


def last_daily_slot(now: datetime, at: time) -> datetime:
    """The most recent moment at `at` (UTC) not after `now`."""
    slot = now.replace(hour=at.hour, minute=at.minute, second=0, microsecond=0)
    return slot if slot <= now else slot - timedelta(days=1)


def daily_run_due(last_success_start: datetime | None, now: datetime, at: time) -> bool:
    """A daily job is due when no successful run started since its latest slot: this is both the
    catch-up after downtime and the guard that keeps it to once per period across leaders."""
    return last_success_start is None or last_success_start < last_daily_slot(now, at)


def check_job(name: str) -> str:
    if name not in JOBS:
        raise InvalidInput(f"Unknown job: {name}. Jobs: {', '.join(JOBS)}")
    return name
