from services.billing.wiring import build_spec
from services.kit.main import run_service

run_service("billing", build_spec)
