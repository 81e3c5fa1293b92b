"""A local receiver of StudioX's outbound webhooks: it verifies each delivery's Standard Webhooks
signature (the `standardwebhooks` library, as a customer's endpoint would), keeps the events and
logs them. `make run` runs it (`studiox dev webhooks`) and points WEBHOOK_ENDPOINTS at it, so the
dev stack's log shows every event delivered; the tests use it to watch deliveries, and to be down
for a while (`available = False`: every delivery answered 503)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from devstack.http_server import QuietHandler, local_server, serving

log = logging.getLogger("studiox.webhooks")

Json = dict[str, Any]


class WebhookReceiver:
    def __init__(self, secret: str, port: int = 0) -> None:
        self._verifier = Webhook(secret)
        self.available = True
        self.events: list[Json] = []
        self.attempts = 0  # deliveries received, refused ones included
        self._lock = threading.Lock()
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                status = receiver.receive(self.body(), dict(self.headers.items()))
                self.send_json(status, {"received": status == 200})

        self._httpd = local_server(Handler, port)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/webhooks"

    def receive(self, body: str, headers: dict[str, str]) -> int:
        with self._lock:
            self.attempts += 1
            if not self.available:
                return 503
        try:
            event: Json = self._verifier.verify(body, headers)
        except (WebhookVerificationError, ValueError) as err:
            log.warning("webhook refused: %s", err)
            return 400
        with self._lock:
            self.events.append(event)
        log.info(
            "webhook %s %s %s",
            event.get("type"),
            event.get("id"),
            json.dumps(event.get("data"), sort_keys=True),
        )
        return 200

    def of_type(self, event_type: str, user_id: str | None = None) -> list[Json]:
        with self._lock:
            return [
                e
                for e in self.events
                if e.get("type") == event_type
                and (user_id is None or (e.get("data") or {}).get("userId") == user_id)
            ]

    def wait_for(
        self, event_type: str, user_id: str | None = None, timeout: float = 20.0
    ) -> list[Json]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.of_type(event_type, user_id)
            if found:
                return found
            time.sleep(0.1)
        return self.of_type(event_type, user_id)

    @contextmanager
    def running(self) -> Iterator[WebhookReceiver]:
        with serving(self._httpd):
            yield self

    def serve_forever(self) -> None:
        self._httpd.serve_forever()


def run(port: int, secret: str) -> None:
    receiver = WebhookReceiver(secret, port)
    log.info("webhook receiver on %s", receiver.url)
    receiver.serve_forever()
