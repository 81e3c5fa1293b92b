"""`studiox` operator commands beside a running stack find it as `make run` left it: the embedded
PostgreSQL in the state folder (or the DATABASE_URL it was given) and the services' addresses."""

from __future__ import annotations

import os
import subprocess
import sys

from services.kit.settings import SERVICE_NAMES
from tests.support.stack import Stack

# What an operator's shell (or .env) holds for a `make run` stack; no DATABASE_URL unless the
# stack was started with one.
USER_VARIABLES = (
    "STUDIOX_STATE_DIR",
    "EMBEDDED_PG_PORT",
    "INTERNAL_SERVICE_TOKEN",
    "APP_ENV",
    *(f"{name.upper()}_SERVICE_ADDR" for name in SERVICE_NAMES),
)


def operator(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update({k: stack.env[k] for k in USER_VARIABLES if k in stack.env})
    if not stack.settings.uses_embedded_postgres:
        env["DATABASE_URL"] = stack.env["DATABASE_URL"]
    return subprocess.run(
        [sys.executable, "-m", "studiox_cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_jobs_run_and_ledger_verify_find_the_running_stack(stack: Stack) -> None:
    job = operator(stack, "jobs", "run", "credit-reset")
    assert job.returncode == 0, job.stdout + job.stderr
    assert job.stdout.startswith("credit-reset: ok ")
    verify = operator(stack, "ledger", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "0 difference(s)" in verify.stdout
