"""Latency at a fixed offered rate (open loop), with Debian's hey: 127.0.0.1 only, bounded in time.

A closed loop of N connections sends a request as soon as the previous one answers, so its p99 is a
function of throughput (queueing behind N-1 others). Here requests are offered at a constant rate
whatever the answers: each hey worker fires every `senders / rate` seconds. A worker whose previous
answer is still outstanding at its tick skips that tick (Go's ticker), so the figures are exact
only while latency stays below that interval (32 senders at 400/s: 80 ms); the achieved rate says
whether it did."""

from __future__ import annotations

import csv
import io
import math
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlparse

from bench.wrk import ensure_tool

SENDERS = 32
# hey sends one set of headers per process: this many processes, each as its own user.
USERS = 8


@dataclass(frozen=True)
class Latency:
    name: str
    offered_rps: float
    seconds: float
    statuses: dict[int, int]
    p50_ms: float
    p99_ms: float
    max_ms: float

    @property
    def answered(self) -> int:
        return sum(self.statuses.values())

    @property
    def achieved_rps(self) -> float:
        return self.answered / self.seconds

    def ok(self, *codes: int) -> int:
        return sum(self.statuses.get(code, 0) for code in codes)


def _quantile(sorted_ms: list[float], q: float) -> float:
    if not sorted_ms:
        return math.nan
    return sorted_ms[min(len(sorted_ms) - 1, math.ceil(q * len(sorted_ms)) - 1)]


def run(
    name: str,
    url: str,
    *,
    rate: float,
    seconds: int,
    tokens: list[str],
    method: str = "GET",
    body: str | None = None,
) -> Latency:
    """`rate` requests/s in total for `seconds`, spread over SENDERS workers in up to USERS hey
    processes (one token each: per-user locks are part of what is measured)."""
    if urlparse(url).hostname not in ("127.0.0.1", "localhost"):
        raise ValueError("load is only ever sent to this machine")
    hey = ensure_tool("hey")
    users = tokens[:USERS] or [""]
    workers = max(1, SENDERS // len(users))
    per_worker = rate / (workers * len(users))

    def one(token: str) -> str:
        argv = [hey, "-z", f"{seconds}s", "-c", str(workers), "-q", f"{per_worker:.4f}"]
        argv += ["-t", "10", "-o", "csv", "-m", method]
        if token:
            argv += ["-H", f"Authorization: Bearer {token}"]
        if body is not None:
            argv += ["-T", "application/json", "-d", body]
        done = subprocess.run(
            [*argv, url], capture_output=True, text=True, timeout=seconds + 60, check=True
        )
        return done.stdout

    with ThreadPoolExecutor(len(users)) as pool:
        outputs = list(pool.map(one, users))
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    for out in outputs:
        for row in csv.DictReader(io.StringIO(out)):
            latencies.append(float(row["response-time"]) * 1000)
            code = int(row["status-code"])
            statuses[code] = statuses.get(code, 0) + 1
    latencies.sort()
    return Latency(
        name=name,
        offered_rps=rate,
        seconds=seconds,
        statuses=statuses,
        p50_ms=_quantile(latencies, 0.50),
        p99_ms=_quantile(latencies, 0.99),
        max_ms=latencies[-1] if latencies else math.nan,
    )
