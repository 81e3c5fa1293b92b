"""A JWKS endpoint on 127.0.0.1 whose key set a test can rotate, counting fetches."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from devstack.http_server import QuietHandler, local_server, serving
from tests.support.tokens import SigningKey


class JwksServer:
    def __init__(self) -> None:
        self.keys: list[SigningKey] = []
        self.fetches = 0
        server = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                server.fetches += 1
                self.send_json(200, {"keys": [k.jwk() for k in server.keys]})

        self._httpd = local_server(Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/.well-known/jwks.json"

    @contextmanager
    def running(self) -> Iterator[JwksServer]:
        with serving(self._httpd):
            yield self
