from services.kit.main import run_service
from services.task.wiring import build_spec

run_service("task", build_spec)
