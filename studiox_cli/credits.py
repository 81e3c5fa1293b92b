"""`studiox credits grant|void|show` (support operations, recorded in the ledger with
`cli:<operator>` as actor and the reason given) and `studiox ledger verify`, both through the
credit service's typed client."""

from __future__ import annotations

import argparse
import asyncio
import sys

from studiox_cli.common import CommandError, local_settings, require_service


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ledger = sub.add_parser("ledger", help="credit ledger operations")
    ledger_sub = ledger.add_subparsers(dest="ledger_command", required=True)
    verify = ledger_sub.add_parser(
        "verify", help="check balance == sum of entries for every account; exit 1 on differences"
    )
    verify.add_argument("--timeout", type=float, default=300.0)
    verify.set_defaults(func=ledger_verify)

    credits = sub.add_parser(
        "credits", help="support operations on credits (recorded with actor and reason)"
    )
    credits_sub = credits.add_subparsers(dest="credits_command", required=True)
    give = credits_sub.add_parser("grant", help="grant promotional or compensation credits")
    give.add_argument("--user", required=True, help="user id")
    give.add_argument("--amount", required=True, type=int)
    give.add_argument("--reason", required=True, help="why (kept in the ledger)")
    give.add_argument("--category", choices=["promotional", "compensation"], default="promotional")
    expiry = give.add_mutually_exclusive_group()
    expiry.add_argument("--expires-at", help="ISO 8601 time with a zone, e.g. 2026-12-31T23:59Z")
    expiry.add_argument("--expires-in", help="a duration: 30d, 12h, 2w, P30D")
    give.add_argument("--priority", type=int, help="spending priority, lower first (0..1000)")
    give.add_argument("--key", help="idempotency key: repeating it returns the first grant")
    give.add_argument("--actor", help="who you are (default: your login name)")
    void = credits_sub.add_parser("void", help="void what is left of a grant")
    void.add_argument("--grant", required=True, help="grant id (from `credits show`)")
    void.add_argument("--reason", required=True)
    void.add_argument("--key", help="idempotency key")
    void.add_argument("--actor", help="who you are (default: your login name)")
    show = credits_sub.add_parser("show", help="balances, grants and recent entries of a user")
    show.add_argument("--user", required=True)
    show.set_defaults(actor=None)
    credits.set_defaults(func=credits_command)


def ledger_verify(ns: argparse.Namespace) -> int:
    from services.credit.client import CreditClient, LedgerReport
    from services.kit.clients import ServiceChannels
    from services.kit.errors import DomainError

    settings = local_settings("ledger")
    require_service(settings, "credit")

    async def verify() -> LedgerReport:
        channels = ServiceChannels(settings)
        try:
            return await CreditClient(channels, timeout=ns.timeout).verify()
        finally:
            await channels.close()

    try:
        report = asyncio.run(verify())
    except DomainError as err:
        raise CommandError(f"ledger verify failed: {err.kind.value}: {err}") from None
    differences = list(report.differences)
    print(f"checked {report.accounts_checked} accounts: {len(differences)} difference(s)")
    for d in differences:
        print(f"  {d.user_id}: {d.problem}: balance {d.balance}, ledger {d.ledger_sum}")
    return 1 if differences else 0


def credits_command(ns: argparse.Namespace) -> int:
    import getpass
    from datetime import datetime

    from services.credit.client import CreditClient
    from services.kit.clients import ServiceChannels
    from services.kit.errors import DomainError
    from studiox.credit.v1 import credit_pb2

    settings = local_settings("credits")
    require_service(settings, "credit")
    actor = f"cli:{ns.actor or getpass.getuser()}"
    grant = void = None
    if ns.credits_command == "grant":
        grant = credit_pb2.GrantCreditsRequest(
            user_id=ns.user,
            amount=ns.amount,
            category=ns.category,
            reason=ns.reason,
            expires_in=ns.expires_in or "",
            idempotency_key=ns.key or "",
        )
        if ns.priority is not None:
            grant.priority = ns.priority
        if ns.expires_at:
            try:
                moment = datetime.fromisoformat(ns.expires_at.replace("Z", "+00:00"))
            except ValueError:
                raise CommandError(
                    f"--expires-at is not an ISO 8601 time: {ns.expires_at}"
                ) from None
            if moment.tzinfo is None:
                raise CommandError("--expires-at needs a time zone (e.g. 2026-12-31T23:59:00Z)")
            grant.expires_at.FromDatetime(moment)
    elif ns.credits_command == "void":
        void = credit_pb2.VoidGrantRequest(
            grant_id=ns.grant, reason=ns.reason, idempotency_key=ns.key or ""
        )

    async def call() -> object:
        channels = ServiceChannels(settings)
        try:
            credit = CreditClient(channels, timeout=30)
            if grant is not None:
                return await credit.admin_grant(grant, actor)
            if void is not None:
                return await credit.admin_void(void, actor)
            return await credit.admin_show(ns.user)
        finally:
            await channels.close()

    try:
        reply = asyncio.run(call())
    except DomainError as err:
        print(f"studiox credits {ns.credits_command}: {err}", file=sys.stderr)
        return 1
    print("\n".join(report_lines(ns.credits_command, reply)))
    return 0


def report_lines(command: str, reply: object) -> list[str]:
    from google.protobuf.json_format import MessageToDict

    from studiox.credit.v1 import credit_pb2

    if isinstance(reply, credit_pb2.GrantCreditsResponse):
        state = "granted" if reply.applied else "already granted (same key)"
        expires = (
            reply.grant.expires_at.ToJsonString() if reply.grant.HasField("expires_at") else "never"
        )
        return [
            f"{state}: grant {reply.grant.id} ({reply.grant.category}, {reply.grant.amount} "
            f"credits, priority {reply.grant.priority}, expires {expires}); "
            f"balance {reply.remaining_credits}"
        ]
    if isinstance(reply, credit_pb2.VoidGrantResponse):
        state = "voided" if reply.applied else "already voided"
        return [f"{state}: {-reply.entry.amount} credits; balance {reply.remaining_credits}"]
    assert isinstance(reply, credit_pb2.ShowAccountResponse)
    c = reply.credits
    lines = [
        f"{c.user_id}: {c.current_credits} credits (allowance {c.allowance_credits}, purchased "
        f"{c.purchased_credits}, bonus {c.bonus_credits}), owed {c.owed_credits}, plan "
        f"{c.plan_name}, resets {c.credit_reset_at.ToJsonString()}",
        "grants:",
    ]
    for g in reply.grants:
        expires = g.expires_at.ToJsonString() if g.HasField("expires_at") else "never"
        closed = f" closed {g.closed_reason}" if g.closed_reason else ""
        lines.append(
            f"  {g.id:>8} {g.category:<12} {g.remaining:>6}/{g.amount:<6} priority {g.priority}"
            f" expires {expires}{closed}"
        )
    lines.append("entries (newest first):")
    for audited in reply.entries:
        e = MessageToDict(audited.entry, preserving_proto_field_name=True)
        who = f" by {audited.actor}: {audited.reason}" if audited.actor else ""
        lines.append(
            f"  {e['id']:>8} {e.get('created_at', '')} {e.get('type', ''):<16}"
            f" {audited.entry.amount:>6} {audited.entry.description}{who}"
        )
    return lines
