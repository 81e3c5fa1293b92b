"""What `make run` starts besides the services: the demo worker and the local Stripe, and the
settings it hands them (the scheduler stops claiming when the worker runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from devstack.stack import StackSettings, child_environment, processes
from devstack.stripe_emulator import SECRET_KEY


def settings(tmp_path: Path, **values: Any) -> StackSettings:
    base: dict[str, Any] = {"state_dir": tmp_path, "app_env": "development"}
    return StackSettings(_env_file=None, **{**base, **values})


def names(stack: StackSettings) -> list[str]:
    return [p.name for p in processes(stack)]


def test_development_without_a_stripe_key_runs_the_worker_and_the_local_stripe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SCHEDULER_CLAIM_LIMIT", raising=False)
    stack = settings(tmp_path, dev_stripe_port=12999)
    assert {"worker", "stripe"} <= set(names(stack))
    worker = next(p for p in processes(stack) if p.name == "worker")
    assert worker.argv[-2:] == ["worker", "--demo"]
    env = child_environment(stack)
    assert env["SCHEDULER_CLAIM_LIMIT"] == "0"
    assert env["STRIPE_API_BASE"] == "http://127.0.0.1:12999"
    assert env["STRIPE_SECRET_KEY"] == SECRET_KEY
    assert env["STUDIOX_DEV_STRIPE"] == "1"


def test_a_real_stripe_key_or_production_keeps_the_local_parts_out(tmp_path: Path) -> None:
    assert "stripe" not in names(settings(tmp_path, stripe_secret_key="sk_test_real"))
    assert "stripe" in names(settings(tmp_path, stripe_secret_key=""))
    production = settings(tmp_path, app_env="production", dev_stripe=True)
    assert {"worker", "stripe"}.isdisjoint(names(production))


def test_both_can_be_turned_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SCHEDULER_CLAIM_LIMIT", raising=False)
    stack = settings(tmp_path, dev_worker=False, dev_stripe=False)
    assert {"worker", "stripe"}.isdisjoint(names(stack))
    assert "SCHEDULER_CLAIM_LIMIT" not in child_environment(stack)
