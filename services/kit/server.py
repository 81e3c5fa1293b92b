"""grpc.aio server bootstrap shared by every service: one interceptor (request id, access control,
domain-error mapping, metrics, access log), grpc.health.v1, reflection, StatusService, and a graceful
stop on SIGTERM/SIGINT that lets in-flight RPCs finish."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
import psycopg
import psycopg_pool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from services.kit import tracing
from services.kit.access import Access, access_for, check_admin, check_internal
from services.kit.auth import make_authenticator
from services.kit.context import Identity, new_request_id, request_id_var, set_identity
from services.kit.errors import DomainError, message_for, status_for
from services.kit.metrics import RPC_DURATION, RPC_TOTAL, start_metrics_server
from services.kit.settings import SERVICE_MAX_METADATA_BYTES, ServiceName, Settings
from services.kit.status import StatusServicer
from services.kit.validation import check_request, request_id, tolerant
from studiox.status.v1 import status_pb2, status_pb2_grpc

log = logging.getLogger("studiox.server")

Authenticator = Callable[[dict[str, str]], Awaitable[Identity]]
HEALTH_PROBE_INTERVAL_SECONDS = 2.0
SLOW_RPC_SECONDS = 1.0
# The database's connection failed or none was free (services.kit.db): a retry will do.
DATABASE_UNAVAILABLE = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    psycopg_pool.PoolTimeout,
)


@dataclass
class ServiceSpec:
    """What a service contributes to the shared bootstrap."""

    name: ServiceName
    # Adds the service's servicers to the server; returns their full names (for health/reflection).
    register: Callable[[grpc.aio.Server], Sequence[str]]
    access_overrides: dict[str, Access] = field(default_factory=dict)
    # Raises when a dependency (e.g. the database) is unreachable; health turns NOT_SERVING meanwhile.
    probe: Callable[[], Awaitable[None]] | None = None
    # Resolves the caller of USER methods; default: Clerk JWT verification from settings.
    authenticate: Authenticator | None = None
    on_stop: Sequence[Callable[[], Awaitable[None]]] = ()
    # Long-running loops started with the server and cancelled before it stops (e.g. the
    # scheduler's leader election and job loop).
    background: Sequence[Callable[[], Coroutine[Any, Any, None]]] = ()


class ServiceInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, spec: ServiceSpec, settings: Settings) -> None:
        self._spec = spec
        self._internal_token = settings.internal_service_token.get_secret_value()
        self._authenticate = spec.authenticate or make_authenticator(settings)
        self._admin_claims = settings.admin_role_claims
        self._admin_roles = settings.admin_roles
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method: str = details.method
        cached = self._wrapped.get(method)
        if cached is not None:
            return cached
        handler = await continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler
        if method.startswith(("/grpc.health.", "/grpc.reflection.", "/studiox.status.")):
            return handler
        # Built once per method: the per-call work happens inside `wrapped`.
        self._wrapped[method] = self._wrap(method, handler)
        return self._wrapped[method]

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        access = access_for(method, self._spec.access_overrides)
        inner = handler.unary_unary

        async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
            metadata = {
                k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)
            }
            request_id_var.set(request_id(metadata.get("x-request-id")) or new_request_id())
            set_identity(None)
            started = time.perf_counter()
            code = grpc.StatusCode.OK
            try:
                await self._authorize(access, metadata, context)
                check_request(request)
                return await inner(request, context)
            except DomainError as err:
                code, trailers = status_for(err)
                tracing.record_error(err.kind.value, err.message)
                await context.abort(code, message_for(err), trailing_metadata=trailers)
            except NotImplementedError:
                code = grpc.StatusCode.UNIMPLEMENTED
                await context.abort(code, "Not implemented yet")
            except grpc.aio.AbortError:
                code = context.code() or grpc.StatusCode.UNKNOWN
                raise
            except asyncio.CancelledError:
                code = grpc.StatusCode.CANCELLED
                raise
            except DATABASE_UNAVAILABLE as err:
                # The database is unreachable (restarting, failing over): a retry will do.
                code = grpc.StatusCode.UNAVAILABLE
                cause = getattr(err, "orig", None) or err
                log.warning("database unavailable in %s: %s", method, type(cause).__name__)
                await context.abort(code, "Service temporarily unavailable")
            except Exception:
                code = grpc.StatusCode.INTERNAL
                log.exception("unhandled error in %s", method)
                await context.abort(code, "Internal server error")
            finally:
                if tracing.active():
                    tracing.annotate(request_id_var.get(), request)
                elapsed = time.perf_counter() - started
                labels = (self._spec.name, method, code.name)
                RPC_DURATION.labels(*labels).observe(elapsed)
                RPC_TOTAL.labels(*labels).inc()
                # Every request is in the gateway's access log already; services add a line for
                # failures and slow calls (and for everything at DEBUG).
                level = (
                    logging.INFO
                    if code is not grpc.StatusCode.OK or elapsed > SLOW_RPC_SECONDS
                    else logging.DEBUG
                )
                if log.isEnabledFor(level):
                    log.log(
                        level,
                        "rpc",
                        extra={"method": method, "code": code.name, "ms": round(elapsed * 1000, 2)},
                    )

        return grpc.unary_unary_rpc_method_handler(
            wrapped,
            # Bytes protobuf refuses reach `wrapped` (as validation.Undecodable) to be answered
            # as a 400 after access control, instead of failing inside gRPC as INTERNAL.
            request_deserializer=tolerant(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )

    async def _authorize(
        self, access: Access, metadata: dict[str, str], context: grpc.aio.ServicerContext
    ) -> None:
        if access is Access.PUBLIC:
            return
        if access is Access.INTERNAL:
            check_internal(metadata, self._internal_token, user_present="authorization" in metadata)
            return
        identity = await self._authenticate(metadata)
        if access is Access.ADMIN:
            # A valid session is not enough: its role claim must name an admin role.
            check_admin(identity.claims, self._admin_claims, self._admin_roles)
        set_identity(identity)


@dataclass
class RunningServer:
    server: grpc.aio.Server
    port: int
    health: HealthServicer
    status: StatusServicer
    spec: ServiceSpec
    _probe_task: asyncio.Task[None] | None = None
    _background: list[asyncio.Task[None]] = field(default_factory=list)

    async def stop(self, grace: float) -> None:
        """Stop accepting new RPCs, let in-flight ones finish within `grace`, then release."""
        await self.health.enter_graceful_shutdown()
        if self._probe_task:
            self._probe_task.cancel()
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.server.stop(grace)
        await self.status.close()
        for hook in self.spec.on_stop:
            await hook()


async def start_server(spec: ServiceSpec, settings: Settings, address: str) -> RunningServer:
    """Build, bind and start the server; `address` may use port 0 (the bound port is returned)."""
    server = grpc.aio.server(
        # Tracing (when configured) wraps the rest, so its span covers access checks and errors.
        interceptors=[*tracing.server_interceptors(), ServiceInterceptor(spec, settings)],
        options=[
            # Clients reconnect now and then, so replicas added by a scale-up receive traffic.
            ("grpc.max_connection_age_ms", 300_000),
            ("grpc.max_connection_age_grace_ms", 30_000),
            # Above the gateway's header limit: oversized headers are the gateway's 431.
            ("grpc.max_metadata_size", SERVICE_MAX_METADATA_BYTES),
            ("grpc.absolute_max_metadata_size", SERVICE_MAX_METADATA_BYTES),
            # A port already taken is an error, not a port silently shared with another process
            # (SO_REUSEPORT would split connections between the two).
            ("grpc.so_reuseport", 0),
        ],
    )
    names = list(spec.register(server))
    health = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    status = StatusServicer(settings)
    status_pb2_grpc.add_StatusServiceServicer_to_server(status, server)
    status_name = status_pb2.DESCRIPTOR.services_by_name["StatusService"].full_name
    reflection.enable_server_reflection(
        [
            *names,
            status_name,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ],
        server,
    )
    port = server.add_insecure_port(address)
    if port == 0:
        raise RuntimeError(f"could not bind {address}")
    await server.start()
    running = RunningServer(server=server, port=port, health=health, status=status, spec=spec)
    await health.set(LIVENESS, health_pb2.HealthCheckResponse.SERVING)
    # SERVING only once the dependencies answered (the database; the scheduler's credit and task):
    # readiness must already be true when it is reported.
    serving = spec.probe is None or await _dependencies_ok(spec.probe, quiet=True)
    await _set_health(running, names, serving=serving)
    if spec.probe is not None:
        running._probe_task = asyncio.create_task(_watch_dependencies(running, names, serving))
    running._background = [asyncio.create_task(loop()) for loop in spec.background]
    return running


async def _set_health(running: RunningServer, names: Sequence[str], *, serving: bool) -> None:
    value = (
        health_pb2.HealthCheckResponse.SERVING
        if serving
        else health_pb2.HealthCheckResponse.NOT_SERVING
    )
    for name in ("", *names):
        await running.health.set(name, value)


# A health name that answers SERVING for as long as the process runs, whatever its dependencies:
# what a liveness probe should ask (restarting a process does not bring a database back).
LIVENESS = "liveness"


async def _dependencies_ok(probe: Callable[[], Awaitable[None]], *, quiet: bool) -> bool:
    try:
        await asyncio.wait_for(probe(), timeout=HEALTH_PROBE_INTERVAL_SECONDS)
    except Exception as exc:  # any failure means "cannot serve right now"
        if not quiet:
            log.warning("dependency check failed: %s", exc)
        return False
    return True


async def _watch_dependencies(running: RunningServer, names: Sequence[str], serving: bool) -> None:
    probe = running.spec.probe
    assert probe is not None
    while True:
        # Sooner while not serving: a starting service should not wait a whole interval.
        await asyncio.sleep(HEALTH_PROBE_INTERVAL_SECONDS / (1 if serving else 4))
        ok = await _dependencies_ok(probe, quiet=not serving)
        if ok != serving:
            serving = ok
            await _set_health(running, names, serving=ok)
            log.info("health changed", extra={"serving": ok})


async def serve(spec: ServiceSpec, settings: Settings) -> None:
    """Run until SIGTERM/SIGINT, then stop gracefully."""
    start_metrics_server(settings.metrics_port)
    running = await start_server(spec, settings, settings.listen_addr(spec.name))
    # Everything built so far (modules, descriptors, the spec's engine and stubs) lives as long as
    # the process: out of the collector's reach, a collection walks only what requests allocate.
    gc.collect()
    gc.freeze()
    log.info("serving", extra={"port": running.port})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down", extra={"grace_seconds": settings.shutdown_grace_seconds})
    await running.stop(settings.shutdown_grace_seconds)
    log.info("stopped")
