"""Task servicers: proto <-> domain translation only."""

from __future__ import annotations

from services.kit.db import Database
from services.kit.server import ServiceSpec
from services.kit.settings import Settings
from services.kit.spec import database_service
from studiox.task.v1 import task_pb2, task_pb2_grpc


class TaskApi(task_pb2_grpc.TaskServiceServicer):
    def __init__(self, db: Database) -> None:
        self._db = db


class TaskInternalApi(task_pb2_grpc.TaskInternalServiceServicer):
    def __init__(self, db: Database) -> None:
        self._db = db


def build_spec(settings: Settings) -> ServiceSpec:
    services = task_pb2.DESCRIPTOR.services_by_name
    return database_service(
        "task",
        settings,
        lambda db, channels: [
            (
                task_pb2_grpc.add_TaskServiceServicer_to_server,
                TaskApi(db),
                services["TaskService"].full_name,
            ),
            (
                task_pb2_grpc.add_TaskInternalServiceServicer_to_server,
                TaskInternalApi(db),
                services["TaskInternalService"].full_name,
            ),
        ],
    )
