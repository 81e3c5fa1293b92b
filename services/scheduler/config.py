"""Scheduler settings (SCHEDULER_* variables)."""

from __future__ import annotations

import os
import socket

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _instance_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class SchedulerConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SCHEDULER_", env_file=".env", extra="ignore")

    # Daily credit reset, HH:MM in UTC.
    reset_at: str = "02:00"
    reset_batch_size: int = Field(default=10_000, ge=1, le=50_000)
    # Batches in flight at once (the database uses one core per batch).
    reset_workers: int = Field(default=2, ge=1, le=8)
    # Grants past their expiry get their expiry entries (a lapsed grant is never spent meanwhile).
    expire_every_seconds: int = Field(default=60, ge=1)
    # Seed behaviour: pending -> processing every minute (0 claims nothing: lease upkeep only,
    # for deployments whose workers claim for themselves).
    process_every_seconds: int = Field(default=60, ge=1)
    claim_limit: int = Field(default=50, ge=0, le=100)
    lease_seconds: int = Field(default=300, ge=1, le=3600)
    repair_every_seconds: int = Field(default=300, ge=1)
    # Crossings of auto top-up thresholds handed to billing (issue 16), and warnings of grants
    # expiring within warn_expiring_hours.
    top_up_every_seconds: int = Field(default=5, ge=1)
    warn_expiring_every_seconds: int = Field(default=600, ge=1)
    warn_expiring_hours: int = Field(default=72, ge=1, le=8760)
    repair_min_age_seconds: int = Field(default=60, ge=0)
    # How often a follower tries to become leader, and the leader checks it still is.
    leader_poll_seconds: float = Field(default=2.0, gt=0)
    instance: str = Field(default_factory=_instance_name)
