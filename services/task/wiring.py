"""Wiring of the task service: its service layer (lifecycle) with a client of credit, and the
servicers over it. The servicers in `api.py` only translate; `python -m services.task` serves
what `build_spec` builds."""

from __future__ import annotations

from services.kit.clients import ServiceChannels
from services.kit.db import Database, fast_json_loads
from services.kit.outbox import delivery_extras
from services.kit.server import ServiceSpec
from services.kit.settings import Settings
from services.kit.spec import Registration, database_service
from services.task.api import ACCESS, TaskApi, TaskInternalApi
from services.task.lifecycle import TaskLifecycle
from studiox.task.v1 import task_pb2, task_pb2_grpc


def _servicers(db: Database, channels: ServiceChannels) -> list[Registration]:
    lifecycle = TaskLifecycle(db, channels)
    services = task_pb2.DESCRIPTOR.services_by_name
    return [
        (
            task_pb2_grpc.add_TaskServiceServicer_to_server,
            TaskApi(db, lifecycle),
            services["TaskService"].full_name,
        ),
        (
            task_pb2_grpc.add_TaskInternalServiceServicer_to_server,
            TaskInternalApi(lifecycle),
            services["TaskInternalService"].full_name,
        ),
    ]


def build_spec(settings: Settings) -> ServiceSpec:
    return database_service(
        "task",
        settings,
        _servicers,
        access=ACCESS,
        extras=delivery_extras("task", settings),  # task.completed / task.failed webhooks
        # A task's documents become protobuf Structs, whose numbers are doubles anyway.
        json_loads=fast_json_loads,
    )
