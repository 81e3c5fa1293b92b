"""Generate code from protos/.

Usage: python scripts/codegen.py [--python] [--descriptor] [--check]

--python      regenerate the committed Python code in gen/
--descriptor  build the descriptor set Envoy's transcoder loads (build/api.pb) and the google/api
              protos `buf lint` needs (build/protodeps); build/ is not committed
--check       regenerate into a temporary folder and fail when gen/ differs (CI drift check)
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

import grpc_tools
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
GEN = ROOT / "gen"
BUILD = ROOT / "build"
WELL_KNOWN = Path(grpc_tools.__file__).parent / "_proto"


def googleapis_root() -> Path:
    import google.api

    # google/api/annotations.proto ships inside googleapis-common-protos; its root is two levels up.
    return Path(next(iter(google.api.__path__))).parent.parent


def proto_files() -> list[Path]:
    return sorted(PROTOS.rglob("*.proto"))


def run_protoc(args: list[str]) -> None:
    includes = [f"-I{PROTOS}", f"-I{googleapis_root()}", f"-I{WELL_KNOWN}"]
    code = protoc.main(["grpc_tools.protoc", *includes, *args])
    if code != 0:
        raise SystemExit(f"protoc failed ({code}) for {args}")


def generate_python(out: Path) -> None:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    files = [str(p.relative_to(PROTOS)) for p in proto_files()]
    run_protoc(
        [
            f"--python_out={out}",
            f"--pyi_out={out}",
            f"--grpc_python_out={out}",
            f"--plugin=protoc-gen-mypy_grpc={Path(sys.executable).parent / 'protoc-gen-mypy_grpc'}",
            "--mypy_grpc_opt=generate_concrete_servicer_stubs,only_async",
            f"--mypy_grpc_out={out}",
            *files,
        ]
    )
    # Packages need __init__.py so that setuptools and mypy see them as regular packages.
    for folder in [out / "studiox", *(p for p in (out / "studiox").rglob("*") if p.is_dir())]:
        (folder / "__init__.py").touch()
        (folder / "py.typed").touch()


def build_descriptor() -> Path:
    """Descriptor set (with imports) that Envoy's grpc_json_transcoder loads."""
    BUILD.mkdir(exist_ok=True)
    target = BUILD / "api.pb"
    files = [str(p.relative_to(PROTOS)) for p in proto_files()]
    run_protoc(
        ["--include_imports", "--include_source_info", f"--descriptor_set_out={target}", *files]
    )
    return target


def copy_proto_deps() -> None:
    """google/api protos for `buf lint`, which cannot use protoc include paths."""
    target = BUILD / "protodeps" / "google" / "api"
    target.mkdir(parents=True, exist_ok=True)
    for name in ("annotations.proto", "http.proto", "httpbody.proto"):
        shutil.copyfile(googleapis_root() / "google" / "api" / name, target / name)


def differences(a: Path, b: Path) -> list[str]:
    cmp = filecmp.dircmp(a, b, ignore=["__pycache__"])
    out: list[str] = []

    def walk(c: filecmp.dircmp[str], prefix: str) -> None:
        out.extend(f"{prefix}{n}" for n in c.left_only + c.right_only + c.diff_files)
        for name, sub in c.subdirs.items():
            walk(sub, f"{prefix}{name}/")

    walk(cmp, "")
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--python", action="store_true")
    parser.add_argument("--descriptor", action="store_true")
    parser.add_argument("--check", action="store_true")
    ns = parser.parse_args()
    if ns.check:
        with tempfile.TemporaryDirectory() as tmp:
            fresh = Path(tmp) / "gen"
            generate_python(fresh)
            diff = differences(fresh, GEN) if GEN.exists() else ["gen/ is missing"]
        if diff:
            print("generated code is stale; run `make gen` and commit:", *diff, sep="\n  ")
            return 1
        print("generated code is up to date")
        return 0
    if ns.python:
        generate_python(GEN)
    if ns.descriptor:
        build_descriptor()
        copy_proto_deps()
    return 0


if __name__ == "__main__":
    sys.exit(main())
