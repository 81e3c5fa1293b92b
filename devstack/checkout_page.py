"""The local stand-in for Stripe's hosted Checkout page (development only).

A Checkout Session's `url` opens this page: it shows what is being bought and lets the developer
pay with a test card, have the card declined, or go through an authentication (3-D Secure) step.
Each choice only changes the Stripe emulator's state, as a customer on Stripe's page would; the
services learn the result from the signed webhooks the emulator then sends."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

from devstack.stripe_emulator import StripeEmulator

# Stripe's test cards, shown on the page and in the `make run` banner.
TEST_CARDS = (
    ("4242 4242 4242 4242", "pays", "pay"),
    ("4000 0000 0000 0002", "is declined", "decline"),
    ("4000 0027 6000 3184", "requires authentication", "authenticate"),
)
ACTIONS = ("pay", "decline", "authenticate", "authenticate_ok", "authenticate_fail")
DECLINED = "Your card was declined. Try another card."
AUTH_FAILED = "We are unable to authenticate your payment method. Try another card."

Json = dict[str, Any]


class CheckoutError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Outcome:
    """What happened on the page: `paid`, `declined` or `requires_action` (authentication step)."""

    status: str
    session_id: str
    message: str = ""
    redirect: str | None = None
    events: list[str] = field(default_factory=list)

    def as_json(self) -> Json:
        return {
            "status": self.status,
            "sessionId": self.session_id,
            "message": self.message,
            "redirect": self.redirect,
            "events": self.events,
        }


def money(cents: int, currency: str) -> str:
    amount = f"{cents / 100:,.2f}"
    return f"${amount}" if currency.lower() == "usd" else f"{amount} {currency.upper()}"


def describe(emulator: StripeEmulator, session: Json) -> tuple[str, str]:
    """(what is bought, what it costs) for a session, from its line items and metadata."""
    currency = str(session.get("currency") or "usd")
    if session["mode"] == "setup":
        return "A card saved for StudioX auto top-up", money(0, currency)
    if session["mode"] == "subscription":
        price = emulator.prices.get(session["_line_items"][0].get("price", ""), {})
        metadata = session.get("_subscription_data", {}).get("metadata", {}) or session.get(
            "metadata", {}
        )
        plan = str(metadata.get("studiox_plan_id") or price.get("product") or "plan")
        return (
            f"StudioX {plan.title()} plan (monthly subscription)",
            f"{money(int(price.get('unit_amount', 0)), currency)} / month",
        )
    names = [
        str(item.get("price_data", {}).get("product_data", {}).get("name") or "StudioX purchase")
        for item in session["_line_items"]
    ]
    return ", ".join(names), money(int(session["amount_total"]), currency)


def success_url(session: Json) -> str:
    return str(session["success_url"]).replace("{CHECKOUT_SESSION_ID}", session["id"])


def act(emulator: StripeEmulator, session_id: str, action: str) -> Outcome:
    """Apply one choice made on the page (or by `studiox dev pay`)."""
    session = emulator.sessions.get(session_id)
    if session is None:
        raise CheckoutError(404, f"No such Checkout Session: {session_id}")
    if action not in ACTIONS:
        raise CheckoutError(400, f"Unknown action {action!r}; one of {', '.join(ACTIONS)}")
    if session["status"] != "open":
        raise CheckoutError(409, f"This Checkout Session is {session['status']}, not open")
    if action == "authenticate":
        return Outcome("requires_action", session_id, "Authentication required by your bank")
    if session["mode"] == "setup":
        # The card is saved; "decline" saves one that later off-session charges decline.
        behaviour = "declined" if action in ("decline", "authenticate_fail") else "ok"
        saved = emulator.complete_setup(session_id, behaviour)
        return Outcome(
            "paid",
            session_id,
            "Card saved",
            redirect=success_url(session),
            events=[e["id"] for e in saved],
        )
    if action in ("decline", "authenticate_fail"):
        events = emulator.decline_checkout(session_id)
        message = DECLINED if action == "decline" else AUTH_FAILED
        return Outcome("declined", session_id, message, events=[e["id"] for e in events])
    events = emulator.complete_checkout(session_id)
    return Outcome(
        "paid",
        session_id,
        "Payment succeeded",
        redirect=success_url(session),
        events=[e["id"] for e in events],
    )


_STYLE = """
body{font-family:system-ui,sans-serif;background:#f6f9fc;color:#1a1f36;margin:0}
main{max-width:460px;margin:48px auto;background:#fff;border-radius:8px;padding:32px;
box-shadow:0 2px 8px rgba(0,0,0,.08)}
.badge{display:inline-block;background:#ffde92;color:#8a5a00;border-radius:4px;padding:2px 8px;
font-size:12px;font-weight:600}
h1{font-size:20px;margin:16px 0 4px}.price{font-size:32px;font-weight:700;margin:8px 0 24px}
button{display:block;width:100%;padding:12px;margin:8px 0;border:0;border-radius:6px;font-size:16px;
cursor:pointer}#pay,#authenticate_ok{background:#635bff;color:#fff}
#decline,#authenticate,#authenticate_fail{background:#e3e8ee;color:#1a1f36}
.message{background:#fde8e8;color:#9b1c1c;padding:12px;border-radius:6px}
.ok{background:#def7ec;color:#03543f;padding:12px;border-radius:6px}
small,li{color:#697386}code{font-size:13px}
"""


def _page(title: str, body: str, refresh_to: str | None = None) -> str:
    refresh = (
        f'<meta http-equiv="refresh" content="3;url={html.escape(refresh_to)}">'
        if refresh_to
        else ""
    )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{html.escape(title)}</title>{refresh}<style>{_STYLE}</style></head>"
        f'<body><main><span class="badge">TEST MODE · local Stripe emulator</span>{body}'
        "</main></body></html>"
    )


def _button(action: str, label: str) -> str:
    return f'<button id="{action}" name="action" value="{action}" type="submit">{label}</button>'


def render_session(emulator: StripeEmulator, session: Json, message: str = "") -> str:
    what, price = describe(emulator, session)
    sid = html.escape(session["id"])
    if session["status"] != "open":
        notice = f'<p class="message" id="closed">This checkout is {session["status"]}.</p>'
        return _page("Checkout", f"<h1>{html.escape(what)}</h1>{notice}")
    cards = "".join(f"<li><code>{number}</code> {effect}</li>" for number, effect, _ in TEST_CARDS)
    error = f'<p class="message" id="message">{html.escape(message)}</p>' if message else ""
    cancel = session.get("cancel_url")
    back = f'<p><a href="{html.escape(cancel)}">← Back to StudioX</a></p>' if cancel else ""
    body = (
        f'<h1 id="product">{html.escape(what)}</h1><div class="price" id="price">'
        f"{html.escape(price)}</div>{error}"
        f'<form method="post" action="/checkout/{sid}">'
        + _button("pay", f"Pay {html.escape(price)} with test card 4242")
        + _button("decline", "Use a card that is declined (4000 …0002)")
        + _button("authenticate", "Use a card that requires authentication (4000 …3184)")
        + f"</form><small>Test cards</small><ul>{cards}</ul>{back}"
        f"<small>Session <code>{sid}</code></small>"
    )
    return _page(f"Pay {what}", body)


def render_challenge(emulator: StripeEmulator, session: Json) -> str:
    what, price = describe(emulator, session)
    sid = html.escape(session["id"])
    body = (
        f'<h1>Authenticate your payment</h1><p id="challenge">Your bank asks you to confirm '
        f"{html.escape(price)} for {html.escape(what)}.</p>"
        f'<form method="post" action="/checkout/{sid}">'
        + _button("authenticate_ok", "Complete authentication")
        + _button("authenticate_fail", "Fail authentication")
        + "</form>"
    )
    return _page("Authentication", body)


def render_paid(emulator: StripeEmulator, session: Json, redirect: str) -> str:
    what, price = describe(emulator, session)
    body = (
        f'<h1>{html.escape(what)}</h1><p class="ok" id="result" data-status="paid">Payment of '
        f"{html.escape(price)} succeeded.</p><p>Returning you to "
        f'<a id="return" href="{html.escape(redirect)}">{html.escape(redirect)}</a>…</p>'
    )
    return _page("Payment succeeded", body, refresh_to=redirect)


def render_index(emulator: StripeEmulator) -> str:
    rows = []
    for session in sorted(emulator.sessions.values(), key=lambda s: -int(s["created"])):
        what, price = describe(emulator, session)
        sid = html.escape(session["id"])
        rows.append(
            f'<li><a href="/checkout/{sid}">{html.escape(what)}</a> {html.escape(price)} '
            f"— {html.escape(session['status'])}</li>"
        )
    listing = "".join(rows) or "<li>No Checkout Sessions yet.</li>"
    return _page("Local Stripe", f"<h1>Checkout Sessions</h1><ul>{listing}</ul>")


def render_error(message: str) -> str:
    return _page("Checkout", f'<p class="message" id="message">{html.escape(message)}</p>')
