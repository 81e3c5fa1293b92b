"""Waiting for a server that is still starting: one loop for a service waiting for its database
(services.kit.main) and the local stack making its database (devstack.postgres). Standard library
only: devstack.postgres, which the local stack's `postgres` process runs, imports nothing heavier
(kit.main, the other caller, brings uvloop, grpc and psycopg)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def retry_until(
    attempt: Callable[[], T],
    *,
    seconds: float,
    pause: float,
    retry_on: type[BaseException] | tuple[type[BaseException], ...],
) -> T:
    """`attempt()`'s result, retrying every `pause` seconds while it raises `retry_on`; once
    `seconds` have passed, its last such error is raised. Any other error is raised at once."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return attempt()
        except retry_on:
            if time.monotonic() >= deadline:
                raise
        time.sleep(pause)
