"""Every service process runs on uvloop, with what start-up built frozen out of the collector's reach
(services/kit/main.py, services/kit/server.py; measured effect in docs/PERFORMANCE.md)."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import uvloop

from services.kit import main, server


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()


def test_a_service_serves_on_uvloop_and_freezes_what_start_up_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: dict[str, Any] = {}

    class Running:
        port = 0

        async def stop(self, grace: float) -> None:
            seen["frozen_at_stop"] = gc.get_freeze_count()

    async def start_server(spec: object, settings: object, address: str) -> Running:
        seen["loop"] = asyncio.get_running_loop()
        seen["frozen_at_start"] = gc.get_freeze_count()
        # Serving until SIGTERM, as in a deployment: the handler is installed before this fires.
        seen["loop"].call_later(0.05, os.kill, os.getpid(), signal.SIGTERM)
        return Running()

    settings = SimpleNamespace(
        log_level="INFO",
        log_format="json",
        metrics_port=None,
        shutdown_grace_seconds=1.0,
        listen_addr=lambda name: "127.0.0.1:0",
    )
    monkeypatch.setattr(main, "startup_settings", lambda *args, **kwargs: settings)
    monkeypatch.setattr(main, "configure_logging", lambda *args, **kwargs: None)
    monkeypatch.setattr(server, "start_server", start_server)
    gc.unfreeze()

    main.run_service("credit", lambda s: SimpleNamespace(name="credit"), ["serve"])  # type: ignore[arg-type,return-value]

    assert isinstance(seen["loop"], uvloop.Loop)
    assert seen["frozen_at_start"] == 0
    assert seen["frozen_at_stop"] > 0
