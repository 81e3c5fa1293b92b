"""Billing rules without I/O: catalog choices, plan placement, keys, Stripe's JSON and signatures."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from services.billing import stripe_objects
from services.billing.domain import (
    FREE_PLAN,
    CreditPack,
    PaymentStatus,
    Plan,
    PlanPlacement,
    Subscription,
    choose_pack,
    choose_plan,
    desired_placement,
    format_price,
    placement_changed,
    plan_change_key,
    stripe_request_key,
    validate_client_key,
    validate_payment_method,
)
from services.billing.stripe_api import verify_event
from services.kit.errors import InvalidInput
from tests.support.stripe_double import parse_form, sign

PACKS = [
    CreditPack("credits_10", "10 credits", 10, 500, "usd"),
    CreditPack("credits_50", "50 credits", 50, 2000, "usd"),
    CreditPack("credits_500", "500 credits", 500, 15000, "usd"),
]
PLANS = [
    Plan("free", "Free", 0, "usd", "month", 10, False, ("image_analysis",)),
    Plan("pro", "Pro", 1999, "usd", "month", 100, False, ("image_analysis",)),
    Plan("enterprise", "Enterprise", 9999, "usd", "month", 0, True, ("image_analysis",)),
]
T0 = datetime(2025, 1, 31, 12, tzinfo=UTC)
SECRET = "whsec_unit"


def sub(
    plan: str | None = "pro",
    status: str = "active",
    start: datetime = T0,
    sub_id: str = "sub_1",
) -> Subscription:
    return Subscription(
        id=sub_id,
        customer_id="cus_1",
        user_id="u",
        status=status,
        plan_id=plan,
        price_id=None,
        item_id=None,
        cancel_at_period_end=False,
        period_start=start,
        period_end=start + timedelta(days=28),
    )


def test_packs_are_chosen_by_id_or_credits() -> None:
    assert choose_pack(PACKS, "credits_50", 0).credits == 50
    assert choose_pack(PACKS, " CREDITS_50 ", 0).credits == 50
    assert choose_pack(PACKS, "", 500).id == "credits_500"
    assert choose_pack(PACKS, "credits_10", 10).id == "credits_10"


@pytest.mark.parametrize(
    ("pack_id", "credits"), [("", 0), ("credits_7", 0), ("", 7), ("", -10), ("credits_10", 50)]
)
def test_invalid_packs_name_every_valid_one(pack_id: str, credits: int) -> None:
    with pytest.raises(InvalidInput) as err:
        choose_pack(PACKS, pack_id, credits)
    assert "credits_10 (10 credits, $5.00)" in err.value.message
    assert "credits_500 (500 credits, $150.00)" in err.value.message


def test_prices_are_formatted_from_cents() -> None:
    assert format_price(1999, "usd") == "$19.99"
    assert format_price(500, "eur") == "5.00 EUR"


def test_plans_are_chosen_by_id_or_name() -> None:
    assert choose_plan(PLANS, "Pro").id == "pro"
    assert choose_plan(PLANS, " enterprise ").id == "enterprise"
    with pytest.raises(InvalidInput, match="Valid plans: free, pro, enterprise"):
        choose_plan(PLANS, "gold")


def test_payment_methods_and_client_keys_are_checked() -> None:
    validate_payment_method("pm_123")
    for bad in ("card_123", "pm_" + "x" * 300):
        with pytest.raises(InvalidInput):
            validate_payment_method(bad)
    assert validate_client_key("") is None
    assert validate_client_key("abc") == "abc"
    for bad in ("x" * 201, "line\nbreak"):
        with pytest.raises(InvalidInput):
            validate_client_key(bad)


def test_stripe_request_keys_follow_the_callers_key_per_user() -> None:
    a = stripe_request_key("checkout", "user_a", "k1")
    assert a == stripe_request_key("checkout", "user_a", "k1")
    assert a != stripe_request_key("checkout", "user_b", "k1")
    assert a != stripe_request_key("intent", "user_a", "k1")
    assert stripe_request_key("checkout", "u", None) != stripe_request_key("checkout", "u", None)
    assert len(stripe_request_key("checkout", "u" * 128, "k" * 200)) < 255


def test_the_best_live_subscription_decides_the_plan() -> None:
    assert desired_placement([], PLANS) == PlanPlacement(FREE_PLAN, None, None)
    pro = sub("pro")
    assert desired_placement([pro], PLANS) == PlanPlacement("pro", T0, T0 + timedelta(days=28))
    both = [pro, sub("enterprise", sub_id="sub_2")]
    assert desired_placement(both, PLANS).plan_id == "enterprise"
    assert desired_placement([sub("pro", status="past_due")], PLANS).plan_id == "pro"
    for ended in ("canceled", "unpaid", "incomplete", "incomplete_expired", "paused"):
        assert desired_placement([sub("pro", status=ended)], PLANS).plan_id == FREE_PLAN
    assert desired_placement([sub(None)], PLANS).plan_id == FREE_PLAN


def test_the_account_moves_on_a_new_plan_or_a_new_period_only() -> None:
    pro = PlanPlacement("pro", T0, T0 + timedelta(days=28))
    assert placement_changed(None, None, pro)
    assert not placement_changed("pro", T0, pro)
    assert placement_changed("pro", T0 - timedelta(days=31), pro)  # renewal
    assert placement_changed("enterprise", T0, pro)
    free = PlanPlacement(FREE_PLAN, None, None)
    assert not placement_changed(None, None, free)  # never placed: already on Free
    assert not placement_changed("free", None, free)
    assert placement_changed("pro", T0, free)


def test_plan_change_keys_name_the_change() -> None:
    pro = PlanPlacement("pro", T0, None)
    assert plan_change_key(3, pro) == f"stripe:plan:3:pro:{int(T0.timestamp())}"
    assert plan_change_key(3, pro) != plan_change_key(4, pro)
    assert plan_change_key(1, PlanPlacement("free", None, None)) == "stripe:plan:1:free:0"


# --- Stripe's JSON ---


def _session(**over: object) -> dict[str, object]:
    return {
        "id": "cs_1",
        "object": "checkout.session",
        "mode": "payment",
        "status": "complete",
        "payment_status": "paid",
        "customer": "cus_1",
        "amount_total": 2000,
        "currency": "usd",
        "metadata": {"studiox_user_id": "u1", "studiox_credits": "50", "studiox_pack_id": "p"},
        **over,
    }


def test_a_checkout_session_is_read_as_a_purchase() -> None:
    purchase = stripe_objects.checkout_purchase(_session())
    assert purchase is not None
    assert (purchase.user_id, purchase.credits, purchase.amount_cents) == ("u1", 50, 2000)
    assert (purchase.status, purchase.grant_key) == (
        PaymentStatus.SUCCEEDED,
        "stripe:checkout:cs_1",
    )
    unpaid = stripe_objects.checkout_purchase(_session(payment_status="unpaid"))
    assert unpaid is not None
    assert unpaid.status is PaymentStatus.PENDING
    expired = stripe_objects.checkout_purchase(_session(status="expired", payment_status="unpaid"))
    assert expired is not None
    assert expired.status is PaymentStatus.EXPIRED
    assert stripe_objects.checkout_purchase(_session(mode="subscription")) is None
    assert stripe_objects.checkout_purchase(_session(metadata={})) is None


def test_only_direct_intents_are_purchases() -> None:
    intent = {
        "id": "pi_1",
        "status": "succeeded",
        "amount": 500,
        "customer": {"id": "cus_1", "object": "customer"},
        "metadata": {"studiox_purchase": "direct", "studiox_credits": "10"},
    }
    purchase = stripe_objects.intent_purchase(intent)
    assert purchase is not None
    assert (purchase.grant_key, purchase.customer_id) == ("stripe:pi:pi_1", "cus_1")
    checkout_intent = {
        **intent,
        "metadata": {"studiox_purchase": "checkout", "studiox_credits": "10"},
    }
    assert stripe_objects.intent_purchase(checkout_intent) is None
    assert stripe_objects.intent_status("requires_payment_method") is PaymentStatus.FAILED
    assert stripe_objects.intent_status("requires_action") is PaymentStatus.PENDING


def test_subscriptions_are_read_from_either_api_shape() -> None:
    start, end = 1_700_000_000, 1_702_592_000
    new_shape = {
        "id": "sub_1",
        "customer": "cus_1",
        "status": "active",
        "cancel_at_period_end": True,
        "items": {
            "data": [
                {
                    "id": "si_1",
                    "price": {"id": "price_pro"},
                    "current_period_start": start,
                    "current_period_end": end,
                }
            ]
        },
    }
    old_shape = {
        "id": "sub_1",
        "customer": "cus_1",
        "status": "active",
        "current_period_start": start,
        "current_period_end": end,
        "items": {"data": [{"id": "si_1", "price": "price_pro"}]},
    }
    for raw in (new_shape, old_shape):
        parsed = stripe_objects.subscription(raw, {"price_pro": "pro"})
        assert (parsed.plan_id, parsed.item_id) == ("pro", "si_1")
        assert parsed.period_start == datetime.fromtimestamp(start, UTC)
        assert parsed.period_end == datetime.fromtimestamp(end, UTC)
    assert stripe_objects.subscription(new_shape, {"price_pro": "pro"}).cancel_at_period_end
    unknown = {**old_shape, "metadata": {"studiox_plan_id": "enterprise"}}
    assert stripe_objects.subscription(unknown, {}).plan_id == "enterprise"
    with pytest.raises(InvalidInput):
        stripe_objects.subscription({"id": "sub_1"}, {})


def test_invoices_find_their_subscription_in_either_api_shape() -> None:
    new = {
        "id": "in_1",
        "customer": "cus_1",
        "amount_paid": 1999,
        "parent": {"subscription_details": {"subscription": "sub_1"}},
    }
    old = {"id": "in_1", "customer": "cus_1", "amount_due": 1999, "subscription": "sub_1"}
    for raw in (new, old):
        invoice = stripe_objects.invoice(raw)
        assert (invoice.subscription_id, invoice.amount_cents) == ("sub_1", 1999)


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"id": "evt_1", "type": "x", "created": 1},
        {"id": "evt_1", "type": "x", "created": "now", "data": {"object": {}}},
        {"id": 5, "type": "x", "created": 1, "data": {"object": {}}},
    ],
)
def test_malformed_events_are_refused(data: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        stripe_objects.parse_event(data)


# --- signatures ---


def _body() -> bytes:
    event = {
        "id": "evt_1",
        "object": "event",
        "type": "checkout.session.completed",
        "created": int(time.time()),
        "data": {"object": _session()},
    }
    return json.dumps(event).encode()


def test_a_stripe_signed_event_is_accepted() -> None:
    body = _body()
    event = verify_event(body, sign(body, SECRET), SECRET)
    assert event["id"] == "evt_1"
    assert event["data"]["object"]["metadata"]["studiox_credits"] == "50"
    # Stripe may send several v1 signatures (secret rotation): one matching is enough.
    header = sign(body, SECRET) + ",v1=" + "0" * 64
    assert verify_event(body, header, SECRET)["id"] == "evt_1"


def test_bad_signatures_are_refused() -> None:
    body = _body()
    now = int(time.time())
    attacks = [
        (body, None),
        (body, ""),
        (body, "t=1,v1=abc"),
        (body, sign(body, "whsec_other")),
        (body, sign(body, SECRET, timestamp=now - 301)),
        (body.replace(b'"50"', b'"500"'), sign(body, SECRET)),
        (body, sign(body, SECRET).split(",")[1]),  # no timestamp
        (b"\xff" + body, sign(b"\xff" + body, SECRET)),
    ]
    for payload, header in attacks:
        with pytest.raises(InvalidInput):
            verify_event(payload, header, SECRET)


def test_the_doubles_form_parser_reads_stripes_encoding() -> None:
    parsed = parse_form(
        "mode=payment&line_items[0][price_data][unit_amount]=500&line_items[0][quantity]=1"
        "&line_items[1][price]=p&metadata[a]=b&items[0][id]=si"
    )
    assert parsed == {
        "mode": "payment",
        "line_items": [{"price_data": {"unit_amount": "500"}, "quantity": "1"}, {"price": "p"}],
        "metadata": {"a": "b"},
        "items": [{"id": "si"}],
    }
