from services.kit.main import run_service
from services.user.wiring import build_spec

run_service("user", build_spec)
