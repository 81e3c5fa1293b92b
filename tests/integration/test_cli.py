from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from tests.support.cluster import INTERNAL_TOKEN, Cluster
from tests.support.credit import FREE, CreditClient


async def _verify_cli(cluster: Cluster) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CREDIT_SERVICE_ADDR": cluster.settings.credit_service_addr,
        "INTERNAL_SERVICE_TOKEN": INTERNAL_TOKEN,
    }
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "services.cli", "ledger", "verify"],
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


async def test_ledger_verify_reports_an_unreachable_service(cluster: Cluster) -> None:
    env = {
        **os.environ,
        "CREDIT_SERVICE_ADDR": "127.0.0.1:1",
        "INTERNAL_SERVICE_TOKEN": INTERNAL_TOKEN,
    }
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "services.cli", "ledger", "verify", "--timeout", "3"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
