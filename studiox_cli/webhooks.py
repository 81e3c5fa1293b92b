"""`studiox webhooks list|retry`: the outboxes of outbound webhooks (credit, task, billing), read
and retried in the database through services.kit.outbox."""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime

from services.kit import outbox
from services.kit.db import SCHEMAS, Database
from services.kit.settings import ServiceName, Settings

SENDERS: tuple[ServiceName, ...] = ("credit", "task", "billing")


def add_commands(sub: argparse._SubParsersAction, run: object) -> None:  # type: ignore[type-arg]
    hooks = sub.add_parser("webhooks", help="outbound webhook events and their delivery attempts")
    hooks_sub = hooks.add_subparsers(dest="webhooks_command", required=True)
    listing = hooks_sub.add_parser("list", help="recent events, newest first, with their attempts")
    listing.add_argument("--state", choices=["pending", "delivered", "dead"])
    listing.add_argument("--user", help="only this user's events")
    listing.add_argument("--limit", type=int, default=20)
    again = hooks_sub.add_parser("retry", help="deliver events again now (dead ones too)")
    again.add_argument("event_ids", nargs="*", metavar="EVENT_ID")
    again.add_argument("--dead", action="store_true", help="every dead event")
    hooks.set_defaults(func=run)


def lines_of(events: list[tuple[ServiceName, outbox.OutboxEvent]]) -> list[str]:
    now = datetime.now(UTC)
    lines = []
    for service, e in events:
        when = e.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        state = e.state
        if state == "pending" and e.attempts:
            wait = max(0, int((e.next_attempt_at - now).total_seconds()))
            state = f"retry in {wait}s"
        error = f"  last error: {e.last_error}" if e.last_error and e.state != "delivered" else ""
        lines.append(
            f"{when}  {e.event_id}  {service:<7} {e.type:<17} {e.user_id or '-':<24}"
            f" attempts={e.attempts} {state}{error}"
        )
    return lines


def run(ns: argparse.Namespace, settings: Settings) -> tuple[int, list[str]]:
    async def go() -> tuple[int, list[str]]:
        db = Database(settings, pool_size=1)
        try:
            async with db.autocommit() as conn:
                if ns.webhooks_command == "list":
                    found: list[tuple[ServiceName, outbox.OutboxEvent]] = []
                    for service in SENDERS:
                        found += [
                            (service, e)
                            for e in await outbox.list_events(
                                conn,
                                SCHEMAS[service],
                                state=ns.state,
                                user_id=ns.user,
                                limit=max(1, min(ns.limit, 1000)),
                            )
                        ]
                    found.sort(key=lambda pair: pair[1].created_at, reverse=True)
                    return 0, lines_of(found[: max(1, ns.limit)]) or ["no events"]
                if not ns.event_ids and not ns.dead:
                    return 2, ["name the events to retry, or --dead"]
                count = 0
                for service in SENDERS:
                    count += await outbox.retry(conn, SCHEMAS[service], ns.event_ids, ns.dead)
                return 0, [f"{count} event(s) due for delivery now"]
        finally:
            await db.close()

    return asyncio.run(go())
