"""How every `studiox` command finds the local stack (devstack.stack.local_settings)."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack.stack import child_environment, local_settings, processes


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no .env
    for name in (
        "DATABASE_URL",
        "STUDIOX_EMBEDDED_PG",
        "REPLICAS",
        "SERVICE_WORKERS",
        "CREDIT_SERVICE_ADDR",
        "DEV_JWT_PUBLIC_KEY_FILE",
        "APP_ENV",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STUDIOX_STATE_DIR", str(tmp_path / "state"))


def test_without_database_url_the_embedded_server_of_make_run_is_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EMBEDDED_PG_PORT", "6543")
    settings = local_settings()
    assert settings.database_url == "postgresql://postgres@127.0.0.1:6543/studiox"
    assert settings.libpq_url == "postgresql://postgres@127.0.0.1:6543/studiox"
    assert settings.uses_embedded_postgres


def test_a_given_database_url_is_used_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:pw@db:5432/prod")
    settings = local_settings()
    assert settings.database_url == "postgresql://app:pw@db:5432/prod"
    assert not settings.uses_embedded_postgres


def test_replicas_are_found_where_make_run_starts_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPLICAS", "2")
    settings = local_settings()
    assert settings.service_endpoints("credit") == ["127.0.0.1:50052", "127.0.0.1:50152"]


def test_commands_see_what_the_stack_processes_see(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPLICAS", "3")
    settings = local_settings()
    env = child_environment(settings)
    assert env["DATABASE_URL"] == settings.database_url
    assert env["CREDIT_SERVICE_ADDR"] == settings.credit_service_addr


def test_production_stacks_never_get_the_dev_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "production")
    assert "DEV_JWT_PUBLIC_KEY_FILE" not in child_environment(local_settings())
    monkeypatch.setenv("APP_ENV", "development")
    assert "DEV_JWT_PUBLIC_KEY_FILE" in child_environment(local_settings())


def test_make_run_starts_one_process_per_two_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    assert local_settings().service_endpoints("task") == ["127.0.0.1:50053"]
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert local_settings().service_endpoints("task") == ["127.0.0.1:50053"]
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    assert local_settings().service_endpoints("task") == ["127.0.0.1:50053", "127.0.0.1:50153"]
    monkeypatch.setattr("os.cpu_count", lambda: 64)
    assert local_settings().replicas == 8  # the port layout's limit


def test_service_workers_sets_the_processes_per_service(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVICE_WORKERS", "1")
    settings = local_settings()
    assert settings.service_endpoints("credit") == ["127.0.0.1:50052"]
    names = [p.name for p in processes(settings)]
    assert "credit" in names
    assert "credit.2" not in names
    monkeypatch.setenv("SERVICE_WORKERS", "3")
    names = [p.name for p in processes(local_settings())]
    assert {"credit.1", "credit.2", "credit.3"} <= set(names)
