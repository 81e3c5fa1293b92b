"""Prometheus metrics shared by every service."""

from __future__ import annotations

from prometheus_client import Counter, Histogram, start_http_server

RPC_DURATION = Histogram(
    "studiox_rpc_duration_seconds",
    "Server-side RPC latency",
    ["service", "method", "code"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
RPC_TOTAL = Counter("studiox_rpc_total", "RPCs handled", ["service", "method", "code"])


def start_metrics_server(port: int | None) -> None:
    if port:
        start_http_server(port, addr="0.0.0.0")
