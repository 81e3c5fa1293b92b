"""Latency at a fixed offered rate (open loop), with Debian's hey: 127.0.0.1 only, bounded in time.

A closed loop of N connections sends a request as soon as the previous one answers, so its p99 is a
function of throughput (queueing behind N-1 others). Here requests are offered at a constant rate
whatever the answers: each sender (a hey process with one worker) fires every `senders / rate`
seconds. The senders are started at evenly staggered offsets within that interval, so arrivals are
spread evenly over time: hey's workers all start their tickers together, and unstaggered 32 workers
fire in the same instant — a burst of 32 at every tick, whose p99 is the time to serve the burst,
not the latency at that rate. A sender whose previous answer is still outstanding at its tick
skips that tick (Go's ticker), so the figures are exact only while latency stays below that
interval (32 senders at 400/s: 80 ms); the achieved rate says whether it did.

Each sender's Go runtime gets one OS thread for Go code (GOMAXPROCS=1): it has one worker, and by
default each of the 32 runtimes may keep a thread per core whose scheduler spins for work on the
cores the measured stack runs on (DECISIONS 110)."""

from __future__ import annotations

import csv
import io
import math
import os
import subprocess
import time
from dataclasses import dataclass
from urllib.parse import urlparse

from bench.wrk import ensure_tool

# One hey process per sender (one worker each, one user each: hey sends one set of headers per
# process), started at staggered offsets.
SENDERS = 32


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
    """`rate` requests/s in total for `seconds`, from SENDERS senders started at evenly staggered
    offsets (each as its own user: per-user locks are part of what is measured)."""
    if urlparse(url).hostname not in ("127.0.0.1", "localhost"):
        raise ValueError("load is only ever sent to this machine")
    hey = ensure_tool("hey")
    users = [tokens[i % len(tokens)] for i in range(SENDERS)] if tokens else [""] * SENDERS
    per_sender = rate / SENDERS
    stagger = 1 / per_sender / SENDERS  # the interval between two senders' ticks

    def argv(token: str) -> list[str]:
        line = [hey, "-z", f"{seconds}s", "-c", "1", "-q", f"{per_sender:.4f}"]
        line += ["-t", "10", "-o", "csv", "-m", method]
        if token:
            line += ["-H", f"Authorization: Bearer {token}"]
        if body is not None:
            line += ["-T", "application/json", "-d", body]
        return [*line, url]

    env = {**os.environ, "GOMAXPROCS": "1"}
    senders: list[subprocess.Popen[str]] = []
    started = time.monotonic()
    try:
        for i, token in enumerate(users):
            time.sleep(max(0.0, started + i * stagger - time.monotonic()))
            senders.append(
                subprocess.Popen(argv(token), stdout=subprocess.PIPE, text=True, env=env)
            )
        outputs = [sender.communicate(timeout=seconds + 60)[0] for sender in senders]
    finally:
        for sender in senders:
            if sender.poll() is None:
                sender.kill()
                sender.wait()
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
