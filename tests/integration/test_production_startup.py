"""A real service process started for production with development secrets refuses to run: one
line per problem, a non-zero exit, no traceback, before it touches the database or a port."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from services.kit.settings import DEV_INTERNAL_SERVICE_TOKEN
from tests.support.ports import free_port

PREFIX = "studiox task: refusing to start in production: "


def test_a_service_refuses_production_with_the_development_token(tmp_path: Path) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CLERK_", "STRIPE_", "DEV_JWT", "INTERNAL_SERVICE"))
    }
    env.update(
        {
            "APP_ENV": "production",
            "INTERNAL_SERVICE_TOKEN": DEV_INTERNAL_SERVICE_TOKEN,
            "DEV_JWT_PUBLIC_KEY_FILE": str(tmp_path / "public.pem"),
            # Nothing listens there: a process that got past the check would fail differently.
            "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/none",
            "TASK_SERVICE_ADDR": f"127.0.0.1:{free_port()}",
        }
    )
    result = subprocess.run(
        [sys.executable, "-m", "services.task", "serve"],
        env=env,
        cwd=tmp_path,  # no .env
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == [
        PREFIX + "INTERNAL_SERVICE_TOKEN is the documented development value; set a random secret"
        " of at least 32 characters (e.g. `openssl rand -hex 32`)",
        PREFIX + "DEV_JWT_PUBLIC_KEY_FILE is set: development sign-in keys are never trusted in"
        " production; unset it",
        PREFIX
        + "CLERK_ISSUER is not set: no session token could be verified; set your Clerk issuer",
    ]
