"""Building a ServiceSpec for a database-backed service from its servicers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from services.kit.access import Access
from services.kit.clients import ServiceChannels
from services.kit.db import Database, JsonLoads
from services.kit.server import Authenticator, ServiceSpec
from services.kit.settings import ServiceName, Settings

# (add_XServicer_to_server, servicer instance, full service name)
Registration = tuple[Callable[[Any, grpc.aio.Server], None], Any, str]


def database_service(
    name: ServiceName,
    settings: Settings,
    servicers: Callable[[Database, ServiceChannels], Sequence[Registration]],
    *,
    access: dict[str, Access] | None = None,
    authenticate: Authenticator | None = None,
    extras: Callable[[Database, ServiceChannels], ServiceExtras] | None = None,
    json_loads: JsonLoads | None = None,
) -> ServiceSpec:
    """A service whose health follows its database, with channels to the services it calls; the
    pool and the channels close on shutdown; `json_loads` reads its json and jsonb columns
    (default: the standard library)."""
    db = Database(settings, json_loads=json_loads)
    channels = ServiceChannels(settings)

    def register(server: grpc.aio.Server) -> Sequence[str]:
        names = []
        for add, servicer, full_name in servicers(db, channels):
            add(servicer, server)
            names.append(full_name)
        return names

    more = extras(db, channels) if extras else ServiceExtras()
    return ServiceSpec(
        name=name,
        register=register,
        access_overrides=access or {},
        probe=more.probe or db.ping,
        authenticate=authenticate,
        on_stop=[*more.on_stop, channels.close, db.close],
        background=more.background,
    )


@dataclass
class ServiceExtras:
    """What a service adds beyond servicers: its own readiness probe (default: the database),
    background loops, and shutdown hooks (run before the channels and pool close)."""

    probe: Callable[[], Awaitable[None]] | None = None
    background: Sequence[Callable[[], Coroutine[Any, Any, None]]] = ()
    on_stop: Sequence[Callable[[], Awaitable[None]]] = ()
