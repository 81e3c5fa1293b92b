"""Tracing configuration: off without an endpoint (nothing imported, nothing installed), the standard
OTEL_* variables read as the SDK reads them, and Envoy's tracer rendered only when configured."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.config import DESCRIPTOR, GatewayConfig, render
from services.kit import tracing


def test_no_endpoint_means_off() -> None:
    assert tracing.configured_endpoint({}) is None
    assert tracing.configured_endpoint({"OTEL_EXPORTER_OTLP_ENDPOINT": " "}) is None
    on = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}
    assert tracing.configured_endpoint(on) == "http://collector:4317"
    assert tracing.configured_endpoint({**on, "OTEL_SDK_DISABLED": "true"}) is None
    assert tracing.configured_endpoint({**on, "OTEL_TRACES_EXPORTER": "none"}) is None
    # The traces-only variable wins, as in the SDK.
    both = {**on, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://traces:4317"}
    assert tracing.configured_endpoint(both) == "http://traces:4317"


@pytest.mark.parametrize(
    ("sampler", "arg", "ratio"),
    [
        (None, None, 1.0),
        ("parentbased_always_on", None, 1.0),
        ("parentbased_traceidratio", "0.25", 0.25),
        ("traceidratio", "0.1", 0.1),
        ("parentbased_traceidratio", "7", 1.0),
        ("parentbased_traceidratio", "many", 1.0),
        ("always_off", None, 0.0),
    ],
)
def test_sampling_ratio_from_the_standard_variables(
    sampler: str | None, arg: str | None, ratio: float
) -> None:
    env = {}
    if sampler:
        env["OTEL_TRACES_SAMPLER"] = sampler
    if arg:
        env["OTEL_TRACES_SAMPLER_ARG"] = arg
    assert tracing.sampling_ratio(env) == ratio


def test_off_costs_nothing(tmp_path: Path) -> None:
    """A service process without an endpoint imports no OpenTelemetry module and installs no
    interceptor."""
    code = (
        "import sys\n"
        "from services.kit import clients, db, main, server, tracing\n"
        "assert tracing.configure('task') is False\n"
        "assert tracing.server_interceptors() == [] and tracing.client_interceptors() == []\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    out = subprocess.run(
        # Elsewhere than the checkout: a developer's .env may switch tracing on.
        [sys.executable, "-c", code],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "[]"


def _gateway(**overrides: Any) -> dict[str, Any]:
    config = GatewayConfig(
        port=3000,
        frontend_url="http://localhost:5173",
        descriptor_path=DESCRIPTOR,
        upstreams={"user": ["user:50051"], "task": ["task:50053"]},
        **overrides,
    )
    loaded: dict[str, Any] = yaml.safe_load(render(config))
    return loaded


def _manager(config: dict[str, Any]) -> dict[str, Any]:
    listener = config["static_resources"]["listeners"][0]
    manager: dict[str, Any] = listener["filter_chains"][0]["filters"][0]["typed_config"]
    return manager


def test_gateway_traces_only_with_a_collector() -> None:
    off = _gateway()
    assert "tracing" not in _manager(off)
    assert "otel_collector" not in [c["name"] for c in off["static_resources"]["clusters"]]

    on = _gateway(otlp_endpoint="http://collector.observability:4317", trace_sampling=0.25)
    manager = _manager(on)
    assert manager["tracing"]["random_sampling"] == {"value": 25}
    provider = manager["tracing"]["provider"]
    assert provider["name"] == "envoy.tracers.opentelemetry"
    assert (
        provider["typed_config"]["grpc_service"]["envoy_grpc"]["cluster_name"] == "otel_collector"
    )
    # Request ids stay exactly as sent (Envoy would otherwise pack its sampling into them).
    assert manager["request_id_extension"]["typed_config"]["pack_trace_reason"] is False
    collector = next(c for c in on["static_resources"]["clusters"] if c["name"] == "otel_collector")
    address = collector["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    assert address["address"]["socket_address"] == {
        "address": "collector.observability",
        "port_value": 4317,
    }


def test_every_public_rpc_has_its_own_route_stats() -> None:
    """Per route: a virtual cluster (volume, latency, Envoy's own failures) and gRPC status counts
    for exactly the public methods (a made-up method name adds no stats)."""
    manager = _manager(_gateway())
    vhost = manager["route_config"]["virtual_hosts"][0]
    names = {v["name"] for v in vhost["virtual_clusters"]}
    assert {
        "task_CreateTask",
        "task_CancelTask",
        "billing_HandleWebhook",
        "status_GetStatus",
    } <= names
    assert not any("Internal" in n for n in names)
    grpc_stats = next(f for f in manager["http_filters"] if f["name"].endswith("grpc_stats"))
    allowed = grpc_stats["typed_config"]["individual_method_stats_allowlist"]["services"]
    counted = {f"{s['name'].split('.')[1]}_{m}" for s in allowed for m in s["method_names"]}
    assert counted == names
