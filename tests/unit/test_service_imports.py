"""What a service process loads: never httpx's command-line client, whose click, rich and pygments
are in the development environment only (services/__init__.py); never SQLAlchemy or alembic, which
only the migrating child process imports (services/kit/main.py, docs/DECISIONS.md 115)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from services.kit.settings import SERVICE_NAMES

DEVELOPMENT_ONLY = ("click", "rich", "pygments")
MIGRATION_ONLY = ("sqlalchemy", "alembic", "greenlet")
PROBE = """
import importlib, sys
importlib.import_module("services.{service}.wiring")
import services.kit.main, services.kit.outbox
import httpx  # what the outbox dispatcher and Stripe's async client import when they send
print(",".join(sorted({{name.split(".")[0] for name in sys.modules}} & set({modules!r}))))
"""


def loaded_by(service: str, packages: tuple[str, ...]) -> str:
    """Which of `packages` a service process has loaded, comma-separated, in a fresh interpreter
    (this one has imported the test tools)."""
    probe = PROBE.format(service=service, modules=packages)
    return subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_a_service_process_never_loads_the_http_clients_command_line(service: str) -> None:
    assert loaded_by(service, DEVELOPMENT_ONLY) == ""


def test_httpx_still_imports_and_sends_without_its_command_line() -> None:
    import httpx

    transport = httpx.MockTransport(lambda request: httpx.Response(204))
    with httpx.Client(transport=transport) as client:
        assert client.post("http://127.0.0.1/hook", content=b"{}").status_code == 204
    assert callable(httpx.main)


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_a_service_process_never_loads_the_migration_tools(service: str) -> None:
    assert loaded_by(service, MIGRATION_ONLY) == ""
