"""Scheduler process: serves health (and StatusService); its jobs arrive with the scheduler issue."""

from __future__ import annotations

from services.kit.server import ServiceSpec
from services.kit.settings import Settings
from services.kit.spec import database_service


def build_spec(settings: Settings) -> ServiceSpec:
    return database_service("scheduler", settings, lambda db, channels: [])
