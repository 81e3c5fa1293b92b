from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from tests.support.cluster import INTERNAL_TOKEN, Cluster
from tests.support.credit import FREE, CreditClient
from tests.support.ports import free_port


async def _verify_cli(cluster: Cluster) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CREDIT_SERVICE_ADDR": cluster.settings.credit_service_addr,
        "INTERNAL_SERVICE_TOKEN": INTERNAL_TOKEN,
    }
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "studiox_cli", "ledger", "verify"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_ledger_verify_exits_nonzero_on_any_difference(
    cluster: Cluster, credit: CreditClient
) -> None:
    clean = await _verify_cli(cluster)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "0 difference(s)" in clean.stdout

    user = await credit.open_account(FREE)
    cluster.sql("UPDATE credit.accounts SET allowance_balance = 3 WHERE user_id = %s", user)
    try:
        broken = await _verify_cli(cluster)
        assert broken.returncode == 1
        assert f"{user}: allowance: balance 3, ledger 10" in broken.stdout
    finally:
        cluster.sql("UPDATE credit.accounts SET allowance_balance = 10 WHERE user_id = %s", user)


async def test_ledger_verify_reports_an_unreachable_service_in_one_line(cluster: Cluster) -> None:
    env = {
        **os.environ,
        "CREDIT_SERVICE_ADDR": "127.0.0.1:1",
        "INTERNAL_SERVICE_TOKEN": INTERNAL_TOKEN,
    }
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "studiox_cli", "ledger", "verify", "--timeout", "3"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert _one_line(result).startswith(
        "studiox ledger: the credit service at 127.0.0.1:1 does not answer (UNAVAILABLE)"
    )


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "studiox_cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    return line


def test_jobs_and_migrate_say_in_one_line_that_postgres_does_not_answer() -> None:
    url = f"postgresql://postgres:secret@127.0.0.1:{free_port()}/studiox"
    for args in (("jobs", "run", "credit-reset"), ("migrate",)):
        line = _one_line(_cli(*args, DATABASE_URL=url))
        assert line.startswith(f"studiox {args[0]}: PostgreSQL at postgresql://postgres:***@")
        assert "secret" not in line
        assert "is the stack running (`make run`)?" in line


def test_jobs_say_in_one_line_that_the_service_they_call_does_not_answer(
    cluster: Cluster,
) -> None:
    line = _one_line(
        _cli(
            "jobs",
            "run",
            "credit-reset",
            DATABASE_URL=cluster.settings.database_url,
            CREDIT_SERVICE_ADDR="127.0.0.1:1",
        )
    )
    assert line.startswith("studiox jobs: the credit service at 127.0.0.1:1 does not answer")


async def test_jobs_say_in_one_line_what_postgres_refused(
    cluster: Cluster, fresh_database: str
) -> None:
    # The credit service answers (in this process: the CLI runs in a thread meanwhile), but this
    # database has no scheduler tables to record the run in.
    result = await asyncio.to_thread(
        _cli,
        "jobs",
        "run",
        "credit-reset",
        DATABASE_URL=fresh_database,
        CREDIT_SERVICE_ADDR=cluster.settings.credit_service_addr,
        INTERNAL_SERVICE_TOKEN=INTERNAL_TOKEN,
    )
    line = _one_line(result)
    assert line.startswith("studiox jobs: recording the job run failed: relation ")
    assert "does not exist" in line


def test_without_database_url_commands_look_where_make_run_puts_postgres(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    port = free_port()
    result = subprocess.run(
        [sys.executable, "-m", "studiox_cli", "jobs", "run", "repair"],
        env={**env, "EMBEDDED_PG_PORT": str(port), "STUDIOX_STATE_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    line = _one_line(result)
    assert f"PostgreSQL at postgresql://postgres@127.0.0.1:{port}/studiox does not answer" in line
