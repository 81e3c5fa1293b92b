from services.kit.main import run_service
from services.scheduler.api import build_spec

run_service("scheduler", build_spec)
