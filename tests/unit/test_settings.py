from __future__ import annotations

from typing import Any

import pytest

from services.kit.settings import Settings


def make(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


@pytest.mark.parametrize(
    "url",
    ["postgres://u@h:5432/db", "postgresql://u@h:5432/db", "postgresql+psycopg://u@h:5432/db"],
)
def test_database_url_forms_become_the_psycopg_dialect(url: str) -> None:
    assert make(database_url=url).sqlalchemy_url == "postgresql+psycopg://u@h:5432/db"


def test_node_env_is_accepted_for_app_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("APP_ENV", raising=False)
    monkeypatch.setenv("NODE_ENV", "production")
    assert Settings(_env_file=None).is_production


def test_authorized_parties_from_comma_separated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLERK_AUTHORIZED_PARTIES", "https://a.example, https://b.example")
    assert Settings(_env_file=None).clerk_authorized_parties == [
        "https://a.example",
        "https://b.example",
    ]


def test_listen_address_follows_the_service_address_unless_a_port_is_given() -> None:
    settings = make(credit_service_addr="credit:6000")
    assert settings.listen_addr("credit") == "127.0.0.1:6000"
    assert make(grpc_port=7000, grpc_host="0.0.0.0").listen_addr("credit") == "0.0.0.0:7000"
