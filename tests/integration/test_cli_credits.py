"""`studiox credits grant|void|show` against the running credit service."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from tests.support.cluster import INTERNAL_TOKEN, Cluster
from tests.support.credit import FREE, CreditClient


async def _cli(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CREDIT_SERVICE_ADDR": cluster.settings.credit_service_addr,
        "INTERNAL_SERVICE_TOKEN": INTERNAL_TOKEN,
    }
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "studiox_cli", "credits", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_grant_void_and_show_from_the_command_line(
    cluster: Cluster, credit: CreditClient
) -> None:
    user = await credit.open_account(FREE)
    grant = ("grant", "--user", user, "--amount", "15", "--reason", "Ticket 42", "--key", "t42")
    first = await _cli(
        cluster, *grant, "--category", "compensation", "--expires-at", "2030-01-01T00:00:00Z"
    )
    assert first.returncode == 0, first.stderr
    assert "granted: grant " in first.stdout
    assert "compensation, 15 credits, priority 30, expires 2030-01-01T00:00:00Z" in first.stdout
    again = await _cli(
        cluster, *grant, "--category", "compensation", "--expires-at", "2030-01-01T00:00:00Z"
    )
    assert "already granted (same key)" in again.stdout
    grant_id = first.stdout.split("grant ")[1].split()[0]

    voided = await _cli(
        cluster, "void", "--grant", grant_id, "--reason", "wrong user", "--actor", "bob"
    )
    assert voided.returncode == 0, voided.stderr
    assert "voided: 15 credits; balance 10" in voided.stdout

    shown = await _cli(cluster, "show", "--user", user)
    assert shown.returncode == 0, shown.stderr
    assert f"{user}: 10 credits" in shown.stdout
    assert "void" in shown.stdout
    assert "by cli:bob: wrong user" in shown.stdout
    assert "Ticket 42" in shown.stdout

    refused = await _cli(
        cluster, "grant", "--user", user, "--amount", "5", "--reason", "x", "--expires-in", "never"
    )
    assert refused.returncode == 1
    assert "expiresIn must be a duration" in refused.stderr
    assert (await credit.account(user)).current_credits == 10
