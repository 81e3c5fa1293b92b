"""Ports for the servers tests start, reserved so that no other process can be handed them.

Binding port 0 and closing the socket (the usual "free port") leaves a window in which the kernel
may give the same port to anyone else: another test session's server, or any outgoing connection.
With SO_REUSEPORT (gRPC's and Envoy's default) a second server even binds it silently and the
kernel splits connections between the two. Instead, each port stays bound here, never listening,
with SO_REUSEADDR, until this process exits: the kernel hands it to no other bind(0) or outgoing
connection, while our servers, which set SO_REUSEADDR (gRPC, Envoy, PostgreSQL, Python's
socketserver), still bind and listen on it, as often as a test restarts them.
"""

from __future__ import annotations

import socket

_reserved: list[socket.socket] = []


def free_port() -> int:
    """A port on 127.0.0.1 reserved for this test process (see the module's docstring)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    _reserved.append(sock)
    return int(sock.getsockname()[1])
