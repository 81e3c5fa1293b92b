"""The small local HTTP servers of the dev stack and the tests (Stripe's emulator, a JWKS): one
request handler base and one way to serve in a background thread."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class QuietHandler(BaseHTTPRequestHandler):
    """Kept-alive HTTP/1.1, no access log, JSON replies."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without this, Nagle's algorithm and delayed ACKs
    # add ~40 ms to every kept-alive request.
    disable_nagle_algorithm = True

    def body(self) -> str:
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length).decode() if length else ""

    def write(
        self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self.write(status, json.dumps(payload).encode(), "application/json", headers)

    def log_message(self, *args: Any) -> None:
        pass


def local_server(handler: type[BaseHTTPRequestHandler], port: int = 0) -> ThreadingHTTPServer:
    """A threaded server on 127.0.0.1 (port 0: any free one); its threads never block exit."""
    httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
    httpd.daemon_threads = True
    return httpd


@contextmanager
def serving(httpd: ThreadingHTTPServer) -> Iterator[None]:
    """`httpd` answering from a background thread for the block; stopped and closed after it,
    whatever the block did."""
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
