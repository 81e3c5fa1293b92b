"""`OBSERVE=1 make run`: Debian's Prometheus scraping the local stack (every service process's
METRICS_PORT and Envoy's metrics listener) with deploy/prometheus/rules.yml loaded, so the alert
rules and the dashboard's queries (deploy/grafana/) can be tried against real traffic."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from services.kit.settings import ServiceName, Settings

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
# A service process's metrics port: its gRPC port + 1000 (credit 50052 -> 51052; replicas follow).
METRICS_PORT_OFFSET = 1000
GATEWAY_METRICS_PORT = 9902
PROMETHEUS_PORT = 9090


def metrics_port(grpc_endpoint: str) -> int:
    return int(grpc_endpoint.rsplit(":", 1)[1]) + METRICS_PORT_OFFSET


def gateway_metrics_port(settings: Settings) -> int:
    return settings.gateway_metrics_port or GATEWAY_METRICS_PORT


def prometheus_config(
    settings: Settings, endpoints: Mapping[ServiceName, list[str]]
) -> dict[str, Any]:
    """Scrape jobs named after the services (the dashboard's `job` label), and the gateway."""
    jobs: list[dict[str, Any]] = [
        {
            "job_name": name,
            "static_configs": [
                {"targets": [f"127.0.0.1:{metrics_port(e)}" for e in service_endpoints]}
            ],
        }
        for name, service_endpoints in endpoints.items()
    ]
    jobs.append(
        {
            "job_name": "gateway",
            "metrics_path": "/stats/prometheus",
            "static_configs": [{"targets": [f"127.0.0.1:{gateway_metrics_port(settings)}"]}],
        }
    )
    return {
        "global": {"scrape_interval": "5s", "evaluation_interval": "5s"},
        "rule_files": [str(RULES)],
        "scrape_configs": jobs,
    }


def run_prometheus(
    settings: Settings, state_dir: Path, endpoints: Mapping[ServiceName, list[str]]
) -> None:
    """Write the config into the state folder and become Prometheus (127.0.0.1 only)."""
    binary = shutil.which("prometheus")
    if binary is None:
        raise SystemExit("prometheus is not installed: `OBSERVE=1 make run` installs Debian's")
    config = state_dir / "prometheus.yml"
    config.write_text(yaml.safe_dump(prometheus_config(settings, endpoints), sort_keys=False))
    os.execv(
        binary,
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={state_dir / 'prometheus'}",
            "--storage.tsdb.retention.time=2d",
            f"--web.listen-address=127.0.0.1:{PROMETHEUS_PORT}",
            "--log.level=warn",
        ],
    )
