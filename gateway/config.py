"""Render the Envoy config from gateway/envoy.yaml.tmpl for a given set of upstream addresses.

The same template serves the local stack (127.0.0.1 ports) and containers (service DNS names); only the
values differ.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from string import Template

GATEWAY_DIR = Path(__file__).resolve().parent
TEMPLATE = GATEWAY_DIR / "envoy.yaml.tmpl"
LUA = GATEWAY_DIR / "error_shaping.lua"

# Public gRPC service -> cluster that serves it.
PUBLIC_ROUTES: dict[str, str] = {
    "studiox.user.v1.UserService": "user",
    "studiox.credit.v1.CreditService": "credit",
    "studiox.task.v1.TaskService": "task",
    "studiox.billing.v1.BillingService": "billing",
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
    lua_path: Path = field(default=LUA)


def _routes() -> str:
    lines = []
    for service, cluster in PUBLIC_ROUTES.items():
        lines += [
            f'                        - match: {{prefix: "/{service}/"}}',
            f"                          route: {{cluster: {cluster}, timeout: 15s}}",
        ]
    return "\n".join(lines)


def _cluster(name: str, endpoints: list[str]) -> str:
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
            "      typed_extension_protocol_options:",
            "        envoy.extensions.upstreams.http.v3.HttpProtocolOptions:",
            '          "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
            "          explicit_http_config: {http2_protocol_options: {}}",
            "      load_assignment:",
            f"        cluster_name: {name}",
            "        endpoints:",
            "          - lb_endpoints:",
            *hosts,
        ]
    )


def render(config: GatewayConfig) -> str:
    status_endpoints = [e for endpoints in config.upstreams.values() for e in endpoints]
    clusters = [_cluster(name, eps) for name, eps in config.upstreams.items()]
    clusters.append(_cluster("status", status_endpoints))
    return Template(TEMPLATE.read_text()).substitute(
        admin_port=config.admin_port,
        listen_host=config.listen_host,
        port=config.port,
        frontend_url=config.frontend_url,
        descriptor_path=config.descriptor_path,
        lua_path=config.lua_path,
        max_request_bytes=config.max_request_bytes,
        service_routes=_routes(),
        clusters="\n".join(clusters),
    )


def write(config: GatewayConfig, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render(config))
    return target
