from services.kit.main import run_service
from services.scheduler.wiring import build_spec

run_service("scheduler", build_spec)
