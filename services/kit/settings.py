"""Typed configuration shared by every service, read from the environment (and `.env`)."""

from __future__ import annotations

from functools import cached_property
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ServiceName = Literal["user", "credit", "task", "billing", "scheduler"]
SERVICE_NAMES: tuple[ServiceName, ...] = ("user", "credit", "task", "billing", "scheduler")
DEFAULT_GRPC_PORTS: dict[ServiceName, int] = {
    "user": 50051,
    "credit": 50052,
    "task": 50053,
    "billing": 50054,
    "scheduler": 50055,
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    # Seed backend variables.
    database_url: str = "postgresql://postgres@127.0.0.1:5432/studiox"
    frontend_url: str = "http://localhost:5173"
    port: int = 3000
    app_env: Literal["development", "test", "production"] = Field(
        default="development", validation_alias=AliasChoices("APP_ENV", "NODE_ENV")
    )
    clerk_secret_key: SecretStr | None = None
    stripe_secret_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    openai_api_key: SecretStr | None = None

    # Identity (Clerk session JWTs).
    clerk_issuer: str | None = None
    clerk_jwks_url: str | None = None
    clerk_jwt_key: str | None = None
    clerk_authorized_parties: Annotated[list[str], NoDecode] = []
    # Dev-only signing key trusted in development (the local stack writes it to its state folder).
    dev_jwt_public_key_file: str | None = None

    # Service-to-service.
    internal_service_token: SecretStr = SecretStr("dev-internal-token-change-me")
    grpc_host: str = "127.0.0.1"
    grpc_port: int | None = None
    user_service_addr: str = f"127.0.0.1:{DEFAULT_GRPC_PORTS['user']}"
    credit_service_addr: str = f"127.0.0.1:{DEFAULT_GRPC_PORTS['credit']}"
    task_service_addr: str = f"127.0.0.1:{DEFAULT_GRPC_PORTS['task']}"
    billing_service_addr: str = f"127.0.0.1:{DEFAULT_GRPC_PORTS['billing']}"
    scheduler_service_addr: str = f"127.0.0.1:{DEFAULT_GRPC_PORTS['scheduler']}"

    # Stripe.
    stripe_api_base: str | None = None
    stripe_price_pro: str | None = None
    stripe_price_enterprise: str | None = None

    # Gateway (Envoy).
    envoy_admin_port: int = 9901
    gateway_listen_host: str = "0.0.0.0"
    gateway_max_request_bytes: int = 1_048_576
    gateway_config_path: str = "/tmp/studiox-envoy.yaml"  # noqa: S108 - rendered at start
    # Per client address (0 turns the limit off).
    gateway_rate_limit_rps: int = 20
    gateway_rate_limit_burst: int = 100
    gateway_trusted_hops: int = 0
    gateway_metrics_port: int = 0

    # Operations.
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"
    metrics_port: int | None = None
    shutdown_grace_seconds: float = 10.0
    db_pool_size: int = 10

    @field_validator("clerk_authorized_parties", mode="before")
    @classmethod
    def _split_csv(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def is_production(self) -> bool:
        return self.app_env == "production"

    @cached_property
    def sqlalchemy_url(self) -> str:
        """DATABASE_URL in the seed's `postgres://` form, as SQLAlchemy's psycopg 3 dialect wants it."""
        url = self.database_url
        for prefix in ("postgres://", "postgresql://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url

    @cached_property
    def libpq_url(self) -> str:
        """DATABASE_URL as plain libpq/psycopg understands it."""
        return self.sqlalchemy_url.replace("postgresql+psycopg://", "postgresql://", 1)

    def service_addr(self, service: ServiceName) -> str:
        """Where a service is reached: `host:port`, or several comma-separated (replicas)."""
        addr: str = getattr(self, f"{service}_service_addr")
        return addr

    def service_endpoints(self, service: ServiceName) -> list[str]:
        return [a.strip() for a in self.service_addr(service).split(",") if a.strip()]

    def channel_target(self, service: ServiceName) -> str:
        """gRPC target: several endpoints become one `ipv4:` target balanced round-robin."""
        endpoints = self.service_endpoints(service)
        return endpoints[0] if len(endpoints) == 1 else "ipv4:" + ",".join(endpoints)

    def listen_addr(self, service: ServiceName) -> str:
        port = self.grpc_port or int(self.service_endpoints(service)[0].rsplit(":", 1)[1])
        return f"{self.grpc_host}:{port}"


def load_settings() -> Settings:
    return Settings()
