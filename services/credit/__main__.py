from services.credit.wiring import build_spec
from services.kit.main import run_service

run_service("credit", build_spec)
