"""The transactional outbox, once for every service: outbound webhook events are rows written in the
same transaction as the effect that causes them (a balance crossing, a top-up's result, a task
finishing), and a delivery loop in each service process sends them to the operator's endpoints.

- **Table.** `<schema>.outbox` (`outbox_ddl`, used by each service's migration): one row per event
  with a unique `event_id` (`evt_<uuid>`, the Standard Webhooks `webhook-id` receivers dedupe on),
  its payload, and its delivery state (attempts, next attempt, endpoints that acknowledged it).
  Triggers may insert rows too (the credit crossing, task completion): the columns have defaults.
- **Claim.** A batch of due rows is taken `FOR UPDATE SKIP LOCKED` and leased (its next attempt
  moved `LEASE` ahead) in one short statement, so replicas never send the same batch at once and
  no transaction stays open during HTTP; a process that dies mid-delivery leaves rows whose lease
  simply runs out.
- **Delivery.** At-least-once: each endpoint that has not acknowledged the event (2xx) gets it,
  signed per Standard Webhooks (`standardwebhooks`); failures are retried with exponential backoff
  (`backoff`) until `max_attempts`, after which the row is `dead` (shown and retried by
  `studiox webhooks list|retry`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from standardwebhooks import Webhook

from services.kit.db import SCHEMAS, Database
from services.kit.settings import ServiceName, Settings
from services.kit.spec import ServiceExtras
from services.kit.sql import Connection, text

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("studiox.outbox")

# How long a claimed row is someone's: longer than one delivery to every endpoint can take.
LEASE = timedelta(seconds=60)
SEND_TIMEOUT_SECONDS = 10.0
ERROR_MAX_CHARS = 300
EVENT_TYPES = (
    "credits.low",
    "credits.depleted",
    "topup.succeeded",
    "topup.failed",
    "grant.expiring",
    "task.completed",
    "task.failed",
)


def outbox_ddl(schema: str) -> list[str]:
    """The statements that create `<schema>.outbox` (for a service's Alembic migration)."""
    return [
        f"""
        CREATE TABLE {schema}.outbox (
            id              bigserial PRIMARY KEY,
            event_id        text NOT NULL UNIQUE
                DEFAULT 'evt_' || replace(gen_random_uuid()::text, '-', ''),
            type            text NOT NULL,
            user_id         text NOT NULL DEFAULT '',
            data            jsonb NOT NULL,
            created_at      timestamptz NOT NULL DEFAULT now(),
            attempts        integer NOT NULL DEFAULT 0,
            next_attempt_at timestamptz NOT NULL DEFAULT now(),
            -- Endpoints (URLs) that acknowledged it: a retry goes only to the others.
            delivered_to    text[] NOT NULL DEFAULT '{{}}',
            delivered_at    timestamptz,
            dead_at         timestamptz,
            last_error      text NOT NULL DEFAULT '',
            last_attempt_at timestamptz
        )
        """,
        # The delivery loop's scan: undelivered, live rows by due time.
        f"CREATE INDEX outbox_due ON {schema}.outbox (next_attempt_at)"
        " WHERE delivered_at IS NULL AND dead_at IS NULL",
        f"CREATE INDEX outbox_user ON {schema}.outbox (user_id, id DESC)",
    ]


@dataclass(frozen=True)
class OutboxEvent:
    id: int
    event_id: str
    type: str
    user_id: str
    data: dict[str, Any]
    created_at: datetime
    attempts: int
    next_attempt_at: datetime
    delivered_to: tuple[str, ...]
    delivered_at: datetime | None
    dead_at: datetime | None
    last_error: str

    @property
    def state(self) -> str:
        if self.delivered_at is not None:
            return "delivered"
        return "dead" if self.dead_at is not None else "pending"

    def body(self) -> str:
        """The JSON body sent (Standard Webhooks' recommended shape: type, timestamp, data)."""
        return json.dumps(
            {
                "id": self.event_id,
                "type": self.type,
                "timestamp": self.created_at.astimezone(UTC).isoformat(),
                "data": self.data,
            },
            separators=(",", ":"),
            sort_keys=True,
        )


@dataclass(frozen=True)
class DeliveryPolicy:
    endpoints: tuple[str, ...]
    secret: str
    backoff_base_seconds: float = 5.0
    backoff_max_seconds: float = 3600.0
    max_attempts: int = 12
    poll_seconds: float = 1.0
    batch_size: int = 50


def backoff(attempts: int, base: float, cap: float) -> timedelta:
    """Wait before the next try after `attempts` failed ones: base, 2·base, 4·base, ... capped."""
    exponent = min(max(attempts - 1, 0), 30)
    return timedelta(seconds=min(cap, base * (2**exponent)))


_COLUMNS = (
    "id, event_id, type, user_id, data, created_at, attempts, next_attempt_at, delivered_to, "
    "delivered_at, dead_at, last_error"
)


def _event(row: Any) -> OutboxEvent:
    m = row._asdict()
    return OutboxEvent(
        id=m["id"],
        event_id=m["event_id"],
        type=m["type"],
        user_id=m["user_id"],
        data=dict(m["data"]),
        created_at=m["created_at"],
        attempts=m["attempts"],
        next_attempt_at=m["next_attempt_at"],
        delivered_to=tuple(m["delivered_to"]),
        delivered_at=m["delivered_at"],
        dead_at=m["dead_at"],
        last_error=m["last_error"],
    )


async def enqueue(
    conn: Connection, schema: str, event_type: str, user_id: str, data: dict[str, Any]
) -> str:
    """Write an event on the caller's transaction (it commits, or not, with the effect)."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type}")
    row = await conn.execute(
        text(
            f"INSERT INTO {schema}.outbox (type, user_id, data)"  # noqa: S608 - constant schema
            " VALUES (:t, :u, CAST(:d AS jsonb)) RETURNING event_id"
        ),
        {"t": event_type, "u": user_id, "d": json.dumps(data)},
    )
    return str(row.scalar_one())


async def claim(conn: Connection, schema: str, limit: int) -> list[OutboxEvent]:
    """Due rows, leased to the caller (one statement: taken SKIP LOCKED, next attempt moved by
    LEASE). The lease is what keeps other replicas off them until this one reports."""
    rows = await conn.execute(
        text(
            f"""
            WITH due AS (
                SELECT id FROM {schema}.outbox
                WHERE delivered_at IS NULL AND dead_at IS NULL AND next_attempt_at <= now()
                ORDER BY next_attempt_at, id
                LIMIT :limit
                FOR UPDATE SKIP LOCKED
            )
            UPDATE {schema}.outbox o SET next_attempt_at = now() + make_interval(secs => :lease)
            FROM due WHERE o.id = due.id
            RETURNING {", ".join("o." + c.strip() for c in _COLUMNS.split(","))}
            """  # noqa: S608
        ),
        {"limit": limit, "lease": LEASE.total_seconds()},
    )
    return sorted((_event(r) for r in rows), key=lambda e: e.id)


async def report(
    conn: Connection,
    schema: str,
    event: OutboxEvent,
    acknowledged: Sequence[str],
    pending: Sequence[str],
    error: str,
    policy: DeliveryPolicy,
) -> None:
    """Record one attempt: delivered when no endpoint is left, else the next try after backoff
    (or dead after the last allowed attempt)."""
    attempts = event.attempts + 1
    done = not pending
    dead = not done and attempts >= policy.max_attempts
    wait = backoff(attempts, policy.backoff_base_seconds, policy.backoff_max_seconds)
    await conn.execute(
        text(
            f"""
            UPDATE {schema}.outbox SET
                attempts = :attempts,
                delivered_to = ARRAY(SELECT DISTINCT unnest(delivered_to || CAST(:acked AS text[]))),
                delivered_at = CASE WHEN :done THEN now() END,
                dead_at = CASE WHEN :dead THEN now() END,
                next_attempt_at = now() + make_interval(secs => :wait),
                last_error = :error,
                last_attempt_at = now()
            WHERE id = :id
            """  # noqa: S608
        ),
        {
            "attempts": attempts,
            "acked": list(acknowledged),
            "done": done,
            "dead": dead,
            "wait": wait.total_seconds(),
            "error": error[:ERROR_MAX_CHARS],
            "id": event.id,
        },
    )


async def list_events(
    conn: Connection, schema: str, *, state: str | None, user_id: str | None, limit: int
) -> list[OutboxEvent]:
    """Newest first, for `studiox webhooks list`."""
    where = ["true"]
    if state == "delivered":
        where.append("delivered_at IS NOT NULL")
    elif state == "dead":
        where.append("dead_at IS NOT NULL")
    elif state == "pending":
        where.append("delivered_at IS NULL AND dead_at IS NULL")
    if user_id:
        where.append("user_id = :user")
    rows = await conn.execute(
        text(
            f"SELECT {_COLUMNS} FROM {schema}.outbox WHERE {' AND '.join(where)}"  # noqa: S608
            " ORDER BY id DESC LIMIT :limit"
        ),
        {"user": user_id, "limit": limit},
    )
    return [_event(r) for r in rows]


async def retry(conn: Connection, schema: str, event_ids: Sequence[str], dead: bool) -> int:
    """Make events due now again (dead ones come back with a fresh attempt budget). `dead`: every
    dead event; otherwise the ids given. Returns how many."""
    condition = "dead_at IS NOT NULL" if dead else "event_id = ANY(:ids)"
    result = await conn.execute(
        text(
            f"""
            UPDATE {schema}.outbox SET next_attempt_at = now(), dead_at = NULL,
                attempts = CASE WHEN dead_at IS NULL THEN attempts ELSE 0 END
            WHERE delivered_at IS NULL AND {condition}
            """  # noqa: S608
        ),
        {"ids": list(event_ids)},
    )
    return int(result.rowcount)


def sign(secret: str, event: OutboxEvent, now: datetime) -> dict[str, str]:
    """Standard Webhooks headers for the event's body."""
    signature = Webhook(secret).sign(event.event_id, now, event.body())
    return {
        "webhook-id": event.event_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }


class Dispatcher:
    """The delivery loop of one service's outbox (a background task of its server)."""

    def __init__(
        self,
        db: Database,
        schema: str,
        policy: DeliveryPolicy,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._db = db
        self._schema = schema
        self._policy = policy
        self._transport = transport

    async def run(self) -> None:
        if not self._policy.endpoints:
            return  # nothing to deliver to: events stay in the outbox (studiox webhooks list)
        # Imported here: a process with nowhere to deliver never loads httpx (5 MiB resident).
        import httpx

        async with httpx.AsyncClient(
            timeout=SEND_TIMEOUT_SECONDS, transport=self._transport
        ) as client:
            while True:
                try:
                    sent = await self.deliver_once(client)
                except asyncio.CancelledError:
                    raise
                except Exception as err:  # the database is down, say: try again later
                    log.warning("outbox delivery failed: %r", err)
                    sent = 0
                if sent == 0:
                    await asyncio.sleep(self._policy.poll_seconds)

    async def deliver_once(self, client: httpx.AsyncClient) -> int:
        """Claim one batch and send it; returns how many events were tried."""
        async with self._db.autocommit() as conn:
            batch = await claim(conn, self._schema, self._policy.batch_size)
        for event in batch:
            acked, pending, error = await self._send(client, event)
            async with self._db.autocommit() as conn:
                await report(conn, self._schema, event, acked, pending, error, self._policy)
        return len(batch)

    async def _send(
        self, client: httpx.AsyncClient, event: OutboxEvent
    ) -> tuple[list[str], list[str], str]:
        acked: list[str] = []
        pending: list[str] = []
        errors: list[str] = []
        import httpx  # already loaded by run()

        body = event.body()
        for endpoint in self._policy.endpoints:
            if endpoint in event.delivered_to:
                continue
            headers = sign(self._policy.secret, event, datetime.now(UTC))
            try:
                reply = await client.post(endpoint, content=body, headers=headers)
            except httpx.HTTPError as err:
                pending.append(endpoint)
                errors.append(f"{endpoint}: {type(err).__name__}")
                continue
            if 200 <= reply.status_code < 300:
                acked.append(endpoint)
            else:
                pending.append(endpoint)
                errors.append(f"{endpoint}: HTTP {reply.status_code}")
        if pending:
            log.info(
                "webhook not delivered",
                extra={"event_id": event.event_id, "type": event.type, "errors": errors},
            )
        else:
            log.info("webhook delivered", extra={"event_id": event.event_id, "type": event.type})
        return acked, pending, "; ".join(errors)


def delivery_policy(settings: Settings) -> DeliveryPolicy:
    return DeliveryPolicy(
        endpoints=tuple(settings.webhook_endpoints),
        secret=settings.webhook_signing_secret.get_secret_value(),
        backoff_base_seconds=settings.webhook_backoff_base_seconds,
        backoff_max_seconds=settings.webhook_backoff_max_seconds,
        max_attempts=settings.webhook_max_attempts,
        poll_seconds=settings.webhook_poll_seconds,
    )


def delivery_extras(service: ServiceName, settings: Settings) -> Callable[..., ServiceExtras]:
    """`extras` for services.kit.spec.database_service: the service's outbox delivery loop, run in
    every replica (SKIP LOCKED and the lease keep replicas apart)."""

    def extras(db: Database, _channels: object) -> ServiceExtras:
        dispatcher = Dispatcher(db, SCHEMAS[service], delivery_policy(settings))
        return ServiceExtras(background=[dispatcher.run])

    return extras
