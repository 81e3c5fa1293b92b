from __future__ import annotations

from typing import Any

import pytest

from services.kit.settings import (
    DEV_INTERNAL_SERVICE_TOKEN,
    Settings,
    production_problems,
    startup_settings,
)
from tests.support.tokens import DEFAULT_KEY


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


STRONG_TOKEN = "x" * 40
CLERK = {"clerk_issuer": "https://clerk.example.com"}


def production(**values: Any) -> Settings:
    return make(
        **{"app_env": "production", "internal_service_token": STRONG_TOKEN, **CLERK, **values}
    )


def test_a_complete_production_configuration_has_no_problems() -> None:
    settings = production(stripe_secret_key="sk_live_x", stripe_webhook_secret="whsec_x")
    for process in ("user", "credit", "task", "billing", "scheduler", "worker"):
        assert production_problems(settings, process) == []


def test_outside_production_nothing_is_refused() -> None:
    settings = make(app_env="development", dev_jwt_public_key_file="/tmp/dev.pem")
    assert production_problems(settings, "user") == []


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"internal_service_token": DEV_INTERNAL_SERVICE_TOKEN}, "documented development value"),
        ({"internal_service_token": "CHANGE-ME"}, "has 9 characters; at least 32"),
        (
            {"dev_jwt_public_key_file": "/state/dev-jwt/public.pem"},
            "DEV_JWT_PUBLIC_KEY_FILE is set",
        ),
        ({"clerk_issuer": None}, "CLERK_ISSUER is not set"),
        ({"clerk_issuer": "http://clerk.example.com"}, "CLERK_ISSUER must be an https:// URL"),
        ({"clerk_jwks_url": "http://clerk.example.com/jwks"}, "CLERK_JWKS_URL must be an https"),
        ({"clerk_jwt_key": "not a key"}, "CLERK_JWT_KEY is not a PEM public key"),
    ],
)
def test_each_insecure_or_missing_secret_is_one_problem(
    values: dict[str, Any], expected: str
) -> None:
    problems = production_problems(production(**values), "task")
    assert len(problems) == 1, problems
    assert expected in problems[0]


def test_the_default_internal_token_is_refused_when_none_is_configured() -> None:
    settings = make(app_env="production", **CLERK)
    assert settings.internal_service_token.get_secret_value() == DEV_INTERNAL_SERVICE_TOKEN
    assert len(production_problems(settings, "scheduler")) == 1


def test_a_pem_clerk_key_with_escaped_newlines_is_accepted() -> None:
    pem = DEFAULT_KEY.public_pem.replace("\n", "\\n")
    assert production_problems(production(clerk_jwt_key=pem), "user") == []


def test_clerk_is_required_only_where_tokens_are_verified() -> None:
    settings = production(clerk_issuer=None)
    assert production_problems(settings, "scheduler") == []
    assert production_problems(settings, "worker") == []
    assert len(production_problems(settings, "billing")) == 1


def test_stripe_without_a_webhook_secret_is_refused_by_billing() -> None:
    settings = production(stripe_secret_key="sk_live_x")
    [problem] = production_problems(settings, "billing")
    assert "STRIPE_WEBHOOK_SECRET is not set while STRIPE_SECRET_KEY is" in problem
    assert production_problems(production(), "billing") == []  # payments not configured: fine


def test_every_problem_is_reported_at_once() -> None:
    settings = make(
        app_env="production",
        dev_jwt_public_key_file="/x.pem",
        stripe_secret_key="sk_live_x",
    )
    assert len(production_problems(settings, "billing")) == 4


def test_startup_refuses_with_one_line_per_problem(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir("/")  # no .env
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("CLERK_ISSUER", "https://clerk.example.com")
    monkeypatch.setenv("INTERNAL_SERVICE_TOKEN", "short")
    monkeypatch.setenv("DEV_JWT_PUBLIC_KEY_FILE", "/x.pem")
    with pytest.raises(SystemExit) as exited:
        startup_settings("credit")
    assert exited.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    assert all(
        line.startswith("studiox credit: refusing to start in production: ") for line in lines
    )
    # A migration needs no secrets.
    assert startup_settings("credit", check_secrets=False).is_production


def test_an_invalid_value_is_one_line_too(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir("/")
    monkeypatch.setenv("APP_ENV", "prod")
    with pytest.raises(SystemExit):
        startup_settings("user")
    assert capsys.readouterr().err.splitlines() == [
        "studiox user: invalid configuration: APP_ENV: Input should be 'development', 'test' or"
        " 'production'"
    ]
