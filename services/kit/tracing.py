"""OpenTelemetry tracing, configured from the standard OTEL_* environment variables.

Off unless an OTLP endpoint is set (`OTEL_EXPORTER_OTLP_ENDPOINT` or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, OTLP over gRPC): then nothing is imported, no interceptor is
installed and no statement is recorded, so an untraced deployment pays nothing. When on, every
service continues the W3C `traceparent` Envoy sends (server interceptor), passes it on to the
services it calls (client interceptors) and records each SQL statement as a child span.

Sampling is decided once, at the edge: services always follow their parent's decision, and use
`OTEL_TRACES_SAMPLER_ARG` (with a `*traceidratio` sampler) only for traces they start themselves
(scheduler jobs). SQL statements are recorded only inside a traced call, so health probes and
background bookkeeping start no traces.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

log = logging.getLogger("studiox.tracing")

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
# The standard variables a deployment may set (docs/OPERATIONS.md): read here or by the SDK.
VARIABLES = (
    *ENDPOINT_VARIABLES,
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_TRACES_EXPORTER",
    "OTEL_SDK_DISABLED",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_CERTIFICATE",
    "OTEL_EXPORTER_OTLP_INSECURE",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_BSP_SCHEDULE_DELAY",
    "OTEL_BSP_MAX_QUEUE_SIZE",
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
)
# Calls that are not part of a user's request: probes and tooling.
UNTRACED_SERVICES = ("grpc.health.v1.", "grpc.reflection.")
REQUEST_ID = "studiox.request_id"
USER_ID = "enduser.id"
ERROR_REASON = "error.type"

_provider: TracerProvider | None = None
_sql_provider: TracerProvider | None = None


def environment() -> dict[str, str]:
    """The process environment, plus OTEL_* variables set only in `.env` (read like every other
    setting; the process environment wins)."""
    from dotenv import dotenv_values

    env = dict(os.environ)
    for key, value in dotenv_values(".env").items():
        if key.startswith("OTEL_") and value is not None:
            env.setdefault(key, value)
    return env


def configured_endpoint(environ: Mapping[str, str] | None = None) -> str | None:
    """The OTLP/gRPC endpoint traces go to, or None when tracing is off (no endpoint, or the SDK
    disabled with OTEL_SDK_DISABLED / OTEL_TRACES_EXPORTER=none)."""
    env = environment() if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    if env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return None
    for name in ENDPOINT_VARIABLES:
        value = env.get(name, "").strip()
        if value:
            return value
    return None


def sampling_ratio(environ: Mapping[str, str] | None = None) -> float:
    """Share of new traces kept, from OTEL_TRACES_SAMPLER(_ARG); parents' decisions always win."""
    env = environment() if environ is None else environ
    sampler = env.get("OTEL_TRACES_SAMPLER", "parentbased_always_on").strip().lower()
    if sampler in ("always_off", "parentbased_always_off"):
        return 0.0
    if sampler in ("traceidratio", "parentbased_traceidratio"):
        try:
            ratio = float(env.get("OTEL_TRACES_SAMPLER_ARG", "1.0"))
        except ValueError:
            log.warning("OTEL_TRACES_SAMPLER_ARG is not a number; sampling everything")
            return 1.0
        return min(max(ratio, 0.0), 1.0)
    return 1.0


def active() -> bool:
    return _provider is not None


def configure(service: str) -> bool:
    """Start exporting this process's spans when an endpoint is configured; True when on."""
    global _provider, _sql_provider
    env = environment()
    if _provider is not None or configured_endpoint(env) is None:
        return _provider is not None
    # The SDK reads the process environment only.
    os.environ.update({k: v for k, v in env.items() if k.startswith("OTEL_")})
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import (
        ALWAYS_OFF,
        ALWAYS_ON,
        ParentBased,
        TraceIdRatioBased,
    )

    # OTEL_RESOURCE_ATTRIBUTES is honoured; service.name is always the StudioX service, even when
    # one OTEL_SERVICE_NAME is set for every container.
    resource = Resource.create().merge(Resource({"service.name": f"studiox-{service}"}))
    processor = BatchSpanProcessor(OTLPSpanExporter())  # endpoint, headers, TLS from OTEL_*
    ratio = sampling_ratio(env)
    root = ALWAYS_ON if ratio >= 1.0 else TraceIdRatioBased(ratio) if ratio > 0 else ALWAYS_OFF
    _provider = TracerProvider(resource=resource, sampler=ParentBased(root=root))
    _provider.add_span_processor(processor)
    # Statements never start a trace of their own (the health probe's SELECT 1 every 2 s, job
    # bookkeeping); inside a traced call they follow it.
    _sql_provider = TracerProvider(
        resource=resource, sampler=ParentBased(root=ALWAYS_OFF), shutdown_on_exit=False
    )
    _sql_provider.add_span_processor(processor)
    trace.set_tracer_provider(_provider)
    log.info("tracing on", extra={"sampling_ratio": ratio})
    return True


def shutdown() -> None:
    """Flush what is buffered (at process exit)."""
    global _provider, _sql_provider
    if _provider is not None:
        _provider.shutdown()
    _provider = _sql_provider = None


def server_interceptors() -> list[Any]:
    """Interceptors continuing the caller's trace; none when tracing is off."""
    if _provider is None:
        return []
    from opentelemetry.instrumentation.grpc import aio_server_interceptor, filters

    traced = filters.negate(filters.any_of(*map(filters.service_prefix, UNTRACED_SERVICES)))
    return [aio_server_interceptor(tracer_provider=_provider, filter_=traced)]  # type: ignore[no-untyped-call]


def client_interceptors() -> Sequence[Any]:
    """Interceptors passing the current trace to the called service; none when tracing is off."""
    if _provider is None:
        return []
    from opentelemetry.instrumentation.grpc import aio_client_interceptors

    return list(aio_client_interceptors(tracer_provider=_provider))  # type: ignore[no-untyped-call]


def annotate(request_id: str, request: object) -> None:
    """Tag the current call's span with what an operator searches by: the request id and the user
    (the authenticated caller, else the user an internal call names). Ids only: never a token, a
    payload or card data."""
    if _provider is None:
        return
    from opentelemetry import trace

    from services.kit.context import current_identity

    span = trace.get_current_span()
    if not span.is_recording():
        return
    span.set_attribute(REQUEST_ID, request_id)
    try:
        user_id: object = current_identity().user_id
    except Exception:  # no authenticated caller (internal or public call)
        user_id = getattr(request, "user_id", None)
    if isinstance(user_id, str) and user_id:
        span.set_attribute(USER_ID, user_id)


def record_error(reason: str, message: str) -> None:
    """Mark the current call's span as failed with the domain error's reason (e.g.
    INSUFFICIENT_CREDITS), so the span where a refusal happened is the one that says so."""
    if _provider is None:
        return
    from opentelemetry import trace
    from opentelemetry.trace import Status, StatusCode

    span = trace.get_current_span()
    if span.is_recording():
        span.set_attribute(ERROR_REASON, reason)
        span.set_status(Status(StatusCode.ERROR, message))


def sql_span(statement: str) -> AbstractContextManager[object]:
    """A span for one statement (every statement through services.kit.db's connections), named
    by its command with the statement as `db.statement`, as OpenTelemetry's database
    instrumentations shape them; nothing when tracing is off or outside a traced call."""
    if _sql_provider is None:
        return nullcontext()
    from opentelemetry.trace import SpanKind

    tracer = _sql_provider.get_tracer("studiox.db")
    name = statement.split(None, 1)[0].upper() if statement.strip() else "SQL"
    return tracer.start_as_current_span(
        name,
        kind=SpanKind.CLIENT,
        attributes={"db.system": "postgresql", "db.statement": statement},
    )
