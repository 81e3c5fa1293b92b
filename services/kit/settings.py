"""Typed configuration shared by every service, read from the environment (and `.env`)."""

from __future__ import annotations

import sys
from functools import cached_property
from typing import Annotated, Any, Literal, NoReturn, TypeVar, overload
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
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

# Request headers the gateway accepts (more answers 431). Services accept twice that as gRPC
# metadata, so whatever Envoy forwards, with the headers it adds, is never refused there (gRPC's
# own 8-16 KB default answered RESOURCE_EXHAUSTED, which clients saw as 429).
GATEWAY_MAX_REQUEST_HEADERS_KB = 32
SERVICE_MAX_METADATA_BYTES = 2 * GATEWAY_MAX_REQUEST_HEADERS_KB * 1024

# The documented development credential: anyone who read the README knows it.
DEV_INTERNAL_SERVICE_TOKEN = "dev-internal-token-change-me"  # noqa: S105 - refused in production
MIN_INTERNAL_TOKEN_LENGTH = 32
# Services that verify Clerk session tokens (public RPCs); the scheduler and workers verify none.
TOKEN_VERIFYING: frozenset[str] = frozenset({"user", "credit", "task", "billing"})
# The documented development signing key of outbound webhooks (services/kit/outbox.py).
DEV_WEBHOOK_SIGNING_SECRET = "whsec_c3R1ZGlveC1kZXZlbG9wbWVudC13ZWJob29rLWtleSE="  # noqa: S105
# Services that write events to an outbox and deliver them.
WEBHOOK_SENDERS: frozenset[str] = frozenset({"credit", "task", "billing"})


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
    # Support staff: a session whose claim at one of these dotted paths (e.g. `metadata.role` from a
    # Clerk session template exposing public metadata, or `org_role`) names one of these roles may
    # call the admin API. Beware `org_role`: anyone can be admin of an organization they create.
    admin_role_claims: Annotated[list[str], NoDecode] = ["metadata.role"]
    admin_roles: Annotated[list[str], NoDecode] = ["admin"]
    # Dev-only signing key trusted in development (the local stack writes it to its state folder).
    dev_jwt_public_key_file: str | None = None

    # Service-to-service.
    internal_service_token: SecretStr = SecretStr(DEV_INTERNAL_SERVICE_TOKEN)
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

    # Outbound webhooks (services/kit/outbox.py): where events go (comma-separated URLs; none means
    # they wait in the outbox) and the Standard Webhooks signing secret (whsec_<base64>).
    webhook_endpoints: Annotated[list[str], NoDecode] = []
    webhook_signing_secret: SecretStr = SecretStr(DEV_WEBHOOK_SIGNING_SECRET)
    webhook_backoff_base_seconds: float = Field(default=5.0, gt=0)
    webhook_backoff_max_seconds: float = Field(default=3600.0, gt=0)
    webhook_max_attempts: int = Field(default=12, ge=1, le=100)
    webhook_poll_seconds: float = Field(default=1.0, gt=0)

    # Operations.
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"
    metrics_port: int | None = None
    shutdown_grace_seconds: float = 10.0
    db_pool_size: int = 10

    @field_validator(
        "clerk_authorized_parties",
        "admin_role_claims",
        "admin_roles",
        "webhook_endpoints",
        mode="before",
    )
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


def production_problems(settings: Settings, process: str) -> list[str]:
    """What keeps `process` (a service name, "worker", ...) from running safely in production: one
    sentence per problem, naming the variable and the fix. Empty outside production."""
    if not settings.is_production:
        return []
    problems = []
    token = settings.internal_service_token.get_secret_value()
    if token == DEV_INTERNAL_SERVICE_TOKEN:
        problems.append(
            "INTERNAL_SERVICE_TOKEN is the documented development value; set a random secret of"
            f" at least {MIN_INTERNAL_TOKEN_LENGTH} characters (e.g. `openssl rand -hex 32`)"
        )
    elif len(token) < MIN_INTERNAL_TOKEN_LENGTH:
        problems.append(
            f"INTERNAL_SERVICE_TOKEN has {len(token)} characters; at least"
            f" {MIN_INTERNAL_TOKEN_LENGTH} are required (e.g. `openssl rand -hex 32`)"
        )
    if settings.dev_jwt_public_key_file:
        problems.append(
            "DEV_JWT_PUBLIC_KEY_FILE is set: development sign-in keys are never trusted in"
            " production; unset it"
        )
    if process in TOKEN_VERIFYING:
        problems += _clerk_problems(settings)
    if process == "billing" and settings.stripe_secret_key and not settings.stripe_webhook_secret:
        problems.append(
            "STRIPE_WEBHOOK_SECRET is not set while STRIPE_SECRET_KEY is: payments could never be"
            " confirmed; set the endpoint's signing secret (whsec_...)"
        )
    if process in WEBHOOK_SENDERS:
        problems += _webhook_problems(settings)
    return problems


def _webhook_problems(settings: Settings) -> list[str]:
    if not settings.webhook_endpoints:
        return []
    problems = []
    if settings.webhook_signing_secret.get_secret_value() == DEV_WEBHOOK_SIGNING_SECRET:
        problems.append(
            "WEBHOOK_SIGNING_SECRET is the documented development value; set a random one"
            " (whsec_ followed by base64 of at least 24 random bytes)"
        )
    problems += [
        f"WEBHOOK_ENDPOINTS: {url} must be an https:// URL"
        for url in settings.webhook_endpoints
        if not _is_https(url)
    ]
    return problems


def _clerk_problems(settings: Settings) -> list[str]:
    if not settings.clerk_issuer:
        return [
            "CLERK_ISSUER is not set: no session token could be verified; set your Clerk issuer"
        ]
    problems = []
    if not _is_https(settings.clerk_issuer):
        problems.append("CLERK_ISSUER must be an https:// URL")
    if settings.clerk_jwt_key:
        from cryptography.hazmat.primitives import serialization

        try:
            serialization.load_pem_public_key(settings.clerk_jwt_key.replace("\\n", "\n").encode())
        except ValueError:
            problems.append("CLERK_JWT_KEY is not a PEM public key")
    elif settings.clerk_jwks_url and not _is_https(settings.clerk_jwks_url):
        problems.append("CLERK_JWKS_URL must be an https:// URL")
    return problems


def _is_https(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "https" and bool(parts.hostname)


S = TypeVar("S", bound=Settings)


@overload
def startup_settings(process: str, *, check_secrets: bool = ...) -> Settings: ...
@overload
def startup_settings(process: str, *, check_secrets: bool = ..., kind: type[S]) -> S: ...
def startup_settings(
    process: str, *, check_secrets: bool = True, kind: type[Settings] = Settings
) -> Any:
    """Settings for a process that is starting: an invalid value, or (in production, with
    check_secrets) an insecure or missing secret, ends it with one line per problem on stderr and
    exit status 2, never a traceback."""
    try:
        settings = kind()
    except ValidationError as exc:
        lines = [
            f"{'.'.join(str(part) for part in error['loc']).upper()}: {error['msg']}"
            for error in exc.errors()
        ]
        _refuse(process, "invalid configuration", lines)
    if check_secrets:
        problems = production_problems(settings, process)
        if problems:
            _refuse(process, "refusing to start in production", problems)
    return settings


def _refuse(process: str, what: str, problems: list[str]) -> NoReturn:
    for problem in problems:
        print(f"studiox {process}: {what}: {problem}", file=sys.stderr)
    raise SystemExit(2)
