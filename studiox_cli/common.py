"""What every command group shares: finding the stack, checking that the part a command needs
answers, and the one way a command gives up (CommandError: one line, exit status 2)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from devstack.stack import StackSettings
    from services.kit.settings import ServiceName, Settings

# Said with every "cannot reach" line: where the command looked, and how to point it elsewhere.
STACK_HINT = "is the stack running (`make run`)? Elsewhere set DATABASE_URL / *_SERVICE_ADDR"
PROBE_TIMEOUT_SECONDS = 3.0


class CommandError(Exception):
    """A command cannot do its work (a part of the stack does not answer, ...): one line for the
    operator, exit status 2, no traceback."""


def local_settings(command: str) -> StackSettings:
    """Every operator command finds the stack the same way (devstack.stack.local_settings)."""
    from devstack.stack import local_settings as found

    return found(command)


def require_database(settings: Settings) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    shown = make_url(settings.libpq_url).render_as_string(hide_password=True)
    try:
        with psycopg.connect(settings.libpq_url, connect_timeout=int(PROBE_TIMEOUT_SECONDS)):
            pass
    except psycopg.Error as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CommandError(
            f"PostgreSQL at {shown} does not answer ({reason}); {STACK_HINT}"
        ) from None


def health(target: str, service: str, timeout: float) -> str:
    """Status name of a gRPC health check ("SERVING", ...), or the gRPC code that answered."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    try:
        with grpc.insecure_channel(target) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout
            )
    except grpc.RpcError as err:
        return str(err.code().name)
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


def require_service(settings: Settings, name: ServiceName) -> None:
    status = health(settings.channel_target(name), "", PROBE_TIMEOUT_SECONDS)
    if status != "SERVING":
        raise CommandError(
            f"the {name} service at {settings.service_addr(name)} does not answer ({status});"
            f" {STACK_HINT}"
        )


def database_failure(exc: Exception) -> str:
    """The first line PostgreSQL said about a failed statement (e.g. a table not migrated yet)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
