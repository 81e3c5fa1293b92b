"""Worker settings (WORKER_* variables)."""

from __future__ import annotations

import os
import socket

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class WorkerConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WORKER_", env_file=".env", extra="ignore")

    # Tasks processed at once by this process.
    concurrency: int = Field(default=4, ge=1, le=100)
    # Lease taken on each claimed task; heartbeats renew it every third of it.
    lease_seconds: int = Field(default=60, ge=3, le=3600)
    # Pause between claims while there is nothing to do.
    poll_seconds: float = Field(default=1.0, gt=0, le=60)
    # After SIGTERM: how long in-flight tasks may still finish before their leases are released.
    shutdown_grace_seconds: float = Field(default=30.0, ge=0)
    # A processor running longer than this is stopped and its task retried (0: no limit).
    task_timeout_seconds: float = Field(default=900.0, ge=0)
    # Processors per type, `type=module:attribute` separated by commas; overrides entry points.
    processors: str = ""
    # Deadline of each call to the task service.
    rpc_timeout_seconds: float = Field(default=5.0, gt=0)
    # How long an outcome is retried while the task service is unreachable.
    report_retry_seconds: float = Field(default=30.0, ge=0)
    id: str = Field(default_factory=_worker_id)
