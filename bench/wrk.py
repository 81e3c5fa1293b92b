"""wrk (Debian's, C) as the load generator: 127.0.0.1 only, bounded in time."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

LUA = Path(__file__).resolve().parent / "lua"


@dataclass(frozen=True)
class Load:
    name: str
    connections: int
    seconds: float
    requests: int
    statuses: dict[int, int]
    socket_errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def server_errors(self) -> int:
        return sum(n for code, n in self.statuses.items() if code >= 500)

    def ok(self, *codes: int) -> int:
        return sum(self.statuses.get(code, 0) for code in codes)


def ensure_tool(binary: str, package: str | None = None) -> str:
    """A Debian tool's path (wrk, hey), installing its package when missing (the bench machine is
    ours)."""
    found = shutil.which(binary)
    if found:
        return found
    if os.geteuid() != 0:
        raise RuntimeError(f"{binary} is missing: apt-get install {package or binary}")
    subprocess.run(["apt-get", "update", "-qq"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", package or binary],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    found = shutil.which(binary)
    assert found is not None
    return found


def run(
    name: str,
    base_url: str,
    script: str,
    *,
    connections: int,
    seconds: int,
    tokens: Path | None = None,
    path: str = "/",
    threads: int = 2,
) -> Load:
    host = urlparse(base_url).hostname
    if host not in ("127.0.0.1", "localhost"):
        raise ValueError("load is only ever sent to this machine")
    env = {**os.environ, "BENCH_LUA": str(LUA), "BENCH_PATH": path}
    if tokens is not None:
        env["BENCH_TOKENS"] = str(tokens)
    result = subprocess.run(
        [
            ensure_tool("wrk"),
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(LUA / script),
            base_url,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    )
    line = next(x for x in result.stdout.splitlines() if x.startswith("BENCH_JSON "))
    data = json.loads(line.removeprefix("BENCH_JSON "))
    return Load(
        name=name,
        connections=connections,
        seconds=data["duration_us"] / 1e6,
        requests=data["requests"],
        statuses={int(k): v for k, v in data["statuses"].items()},
        socket_errors=data["connect_errors"]
        + data["read_errors"]
        + data["write_errors"]
        + data["timeouts"],
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
    )
