"""`studiox dev …` (the processes `make run` starts, and what a customer or Stripe's clock does on
the local Stripe) and `studiox token` (a dev token for the local stack)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, cast

from services.kit.settings import SERVICE_NAMES, ServiceName
from studiox_cli.common import STACK_HINT, CommandError, local_settings

if TYPE_CHECKING:
    from devstack.stack import StackSettings


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    dev = sub.add_parser("dev", help="local stack (what `make run` starts)")
    dev_sub = dev.add_subparsers(dest="dev_command", required=True)
    dev_sub.add_parser("run", help="start the whole stack")
    dev_sub.add_parser("postgres", help="run the embedded PostgreSQL server")
    service = dev_sub.add_parser("service", help="wait for the database, migrate and serve")
    service.add_argument("name", choices=SERVICE_NAMES)
    dev_sub.add_parser("gateway", help="render the Envoy config and run Envoy")
    dev_sub.add_parser("prometheus", help="run Prometheus against the local stack (OBSERVE=1)")
    dev_sub.add_parser("banner", help="wait for /health and print the ready banner")
    dev_sub.add_parser("stripe", help="run the local Stripe (API, checkout pages, webhooks)")
    dev_sub.add_parser("webhooks", help="run the local receiver of outbound webhooks (logs them)")
    pay = dev_sub.add_parser(
        "pay", help="act on a local checkout page: pay (test card 4242), decline, or authenticate"
    )
    pay.add_argument(
        "target",
        help="the checkoutUrl, a Checkout Session id (cs_test_…), or - to read the purchase or "
        "plan-change answer from stdin",
    )
    outcome = pay.add_mutually_exclusive_group()
    outcome.add_argument("--decline", action="store_true", help="the card is declined")
    outcome.add_argument(
        "--authenticate", action="store_true", help="pay with a card that asks for 3-D Secure"
    )
    clock = dev_sub.add_parser(
        "advance-clock",
        help="end the billing period of every live subscription on the local Stripe (renewals)",
    )
    clock.add_argument("--decline", action="store_true", help="the renewal payment fails")
    clock.add_argument("--user", help="only this user's subscriptions")
    dev.set_defaults(func=dev_command)

    token = sub.add_parser(
        "token",
        help="print a dev token for the local stack (trusted only with APP_ENV=development)",
    )
    token.add_argument("--user", required=True, help="user id (the token's sub)")
    token.add_argument("--email")
    token.add_argument("--name")
    token.add_argument("--ttl", type=int, default=8 * 3600, help="lifetime in seconds")
    token.set_defaults(func=token_command)


def dev_command(ns: argparse.Namespace) -> int:
    from devstack import stack
    from services.kit.settings import startup_settings

    settings = startup_settings("dev", check_secrets=False, kind=stack.StackSettings)
    if ns.dev_command == "run":
        return stack.run(settings)
    if ns.dev_command == "postgres":
        settings.embedded.exec_server()
    elif ns.dev_command == "service":
        stack.run_service(settings, cast(ServiceName, ns.name))
    elif ns.dev_command == "gateway":
        stack.run_gateway(settings)
    elif ns.dev_command == "prometheus":
        stack.run_prometheus(settings)
    elif ns.dev_command == "banner":
        return stack.banner(settings)
    elif ns.dev_command == "stripe":
        stack.run_dev_stripe(settings)
    elif ns.dev_command == "webhooks":
        stack.run_dev_webhooks(settings)
    elif ns.dev_command in ("pay", "advance-clock"):
        return payments(ns, settings)
    return 0


def payments(ns: argparse.Namespace, settings: StackSettings) -> int:
    """`dev pay` and `dev advance-clock`: what a customer or Stripe's clock does, through the
    local Stripe; the services hear of it only through its signed webhooks."""
    import httpx

    from devstack import stripe_dev

    base = stripe_dev.api_base(settings.dev_stripe_port)
    try:
        if ns.dev_command == "pay":
            target = ns.target
            if target == "-":
                try:
                    target = stripe_dev.target_in(sys.stdin.read())
                except ValueError as exc:
                    raise CommandError(str(exc)) from None
            base, session_id = stripe_dev.session_target(target, base)
            action = "decline" if ns.decline else "authenticate_ok" if ns.authenticate else "pay"
            status, body = stripe_dev.pay(base, session_id, action)
        else:
            status, body = stripe_dev.advance_clock(base, decline=ns.decline, user=ns.user)
    except httpx.HTTPError as exc:
        raise CommandError(
            f"the local Stripe at {base} does not answer ({exc}); {STACK_HINT}"
        ) from None
    if status >= 400:
        print(f"studiox dev {ns.dev_command}: {body['error']['message']}", file=sys.stderr)
        return 1
    print("\n".join(stripe_dev.summary(body)))
    if not body.get("delivered", True):
        print("warning: webhooks not delivered yet (is the gateway up?)", file=sys.stderr)
    return 0


def token_command(ns: argparse.Namespace) -> int:
    from devstack import dev_tokens

    settings = local_settings("token")
    try:
        token = dev_tokens.mint(
            settings.state_dir, ns.user, email=ns.email, name=ns.name, ttl=ns.ttl
        )
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(token)
    return 0
