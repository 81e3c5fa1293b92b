"""Billing rules without I/O: catalog choices, plan placement, keys, Stripe's JSON and signatures."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from devstack.stripe_emulator import parse_form, sign
from services.billing import stripe_objects
from services.billing.domain import (
    FREE_PLAN,
    CreditPack,
    Order,
    OrderAction,
    OrderKind,
    PaymentStatus,
    Plan,
    Refused,
    checkout_state,
    choose_pack,
    choose_plan,
    format_price,
    purchase_problems,
    stripe_request_key,
    validate_client_key,
    validate_payment_method,
)
from services.billing.plan_rules import (
    PlanPlacement,
    Subscription,
    keep_one,
    placement_changed,
    placement_for,
    plan_change_key,
    plan_terms,
)
from services.billing.stripe_api import verify_event
from services.kit.errors import InvalidInput

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


PRICES = {"pro": 1999, "enterprise": 9999}


def sub(
    plan: str | None = "pro",
    status: str = "active",
    start: datetime = T0,
    sub_id: str = "sub_1",
    *,
    created: datetime = T0,
    paid: bool = True,
    price: int | None = None,
) -> Subscription:
    return Subscription(
        id=sub_id,
        customer_id="cus_1",
        status=status,
        plan_id=plan,
        price_id=None,
        item_id=None,
        cancel_at_period_end=False,
        period_start=start,
        period_end=start + timedelta(days=28),
        created=created,
        price_cents=PRICES.get(plan or "") if price is None else price,
        currency="usd",
        invoice_paid=paid,
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


def test_the_live_subscription_at_the_catalog_price_decides_the_plan() -> None:
    assert placement_for(None, PLANS) == PlanPlacement(FREE_PLAN, None, None)
    pro = sub("pro")
    end = T0 + timedelta(days=28)
    assert placement_for(pro, PLANS) == PlanPlacement("pro", T0, end, True, "sub_1")
    for ended in ("canceled", "unpaid", "incomplete", "incomplete_expired", "paused"):
        assert placement_for(sub("pro", status=ended), PLANS).plan_id == FREE_PLAN
    assert placement_for(sub(None), PLANS).plan_id == FREE_PLAN
    assert placement_for(sub("pro", price=1), PLANS).plan_id == FREE_PLAN  # not our price
    assert placement_for(sub("free", price=0), PLANS).plan_id == FREE_PLAN


def test_a_period_is_paid_only_once_its_invoice_is_paid() -> None:
    assert sub("pro").paid
    assert not sub("pro", status="past_due").paid
    assert not sub("pro", paid=False).paid  # new period, invoice still open
    unpaid = placement_for(sub("pro", status="past_due"), PLANS)
    assert (unpaid.plan_id, unpaid.paid) == ("pro", False)
    assert plan_terms(PLANS[1], paid=True) == (100, False)
    assert plan_terms(PLANS[2], paid=True) == (0, True)
    assert plan_terms(PLANS[1], paid=False) == plan_terms(PLANS[2], paid=False) == (0, False)


def test_one_subscription_is_kept_the_placed_one_or_else_the_oldest() -> None:
    older = sub("pro", sub_id="sub_a", created=T0)
    newer = sub("enterprise", sub_id="sub_b", created=T0 + timedelta(seconds=1))
    assert keep_one([newer, older], PLANS, None) == (older, [newer])
    assert keep_one([older, newer], PLANS, "sub_b") == (newer, [older])
    twin = sub("pro", sub_id="sub_0", created=T0)
    assert keep_one([older, twin], PLANS, None) == (twin, [older])  # same second: by id
    ended = sub("pro", status="canceled", sub_id="sub_c")
    assert keep_one([ended, older], PLANS, None) == (older, [])
    assert keep_one([], PLANS, None) == (None, [])


def test_the_account_moves_on_a_new_plan_a_new_period_or_payment_only() -> None:
    pro = PlanPlacement("pro", T0, T0 + timedelta(days=28))
    assert placement_changed(None, None, pro)
    assert not placement_changed("pro", T0, pro)
    assert placement_changed("pro", T0 - timedelta(days=31), pro)  # renewal
    assert placement_changed("enterprise", T0, pro)
    unpaid = PlanPlacement("pro", T0, T0 + timedelta(days=28), paid=False)
    assert placement_changed("pro", T0 - timedelta(days=31), unpaid)  # past_due: no allowance
    assert not placement_changed("pro", T0, unpaid, applied_paid=False)
    assert placement_changed("pro", T0, pro, applied_paid=False)  # now paid: the allowance
    assert not placement_changed("pro", T0, unpaid, applied_paid=True)  # never taken back
    free = PlanPlacement(FREE_PLAN, None, None)
    assert not placement_changed(None, None, free)  # never placed: already on Free
    assert not placement_changed("free", None, free)
    assert placement_changed("pro", T0, free)


def test_plan_change_keys_name_the_change() -> None:
    pro = PlanPlacement("pro", T0, None)
    assert plan_change_key(3, pro) == f"stripe:plan:3:pro:{int(T0.timestamp())}"
    assert plan_change_key(3, pro) != plan_change_key(4, pro)
    assert plan_change_key(1, PlanPlacement("free", None, None)) == "stripe:plan:1:free:0"
    unpaid = PlanPlacement("pro", T0, None, paid=False)
    assert plan_change_key(3, unpaid) == f"stripe:plan:3:pro:{int(T0.timestamp())}:unpaid"


# --- orders ---


def _order(**over: object) -> Order:
    fields: dict[str, object] = {
        "ref": "ord_1",
        "request_key": "purchase:k",
        "user_id": "u1",
        "customer_id": "cus_1",
        "kind": OrderKind.CREDITS,
        "action": OrderAction.CHECKOUT,
        "pack_id": "credits_50",
        "plan_id": None,
        "credits": 50,
        "amount_cents": 2000,
        "currency": "usd",
        "stripe_id": "cs_1",
        **over,
    }
    return Order(**fields)  # type: ignore[arg-type]


def test_a_purchase_must_be_the_order_stripe_says_it_is() -> None:
    paid = stripe_objects.checkout_payment(_session())
    assert purchase_problems(_order(), paid) == []
    assert purchase_problems(_order(stripe_id=None), paid) == []  # names ord_1 in its metadata
    assert purchase_problems(_order(stripe_id=None, ref="ord_2"), paid)
    assert purchase_problems(_order(stripe_id="cs_2"), paid)
    assert purchase_problems(_order(customer_id="cus_2"), paid)
    assert purchase_problems(_order(amount_cents=500), paid)
    assert purchase_problems(_order(currency="eur"), paid)
    assert purchase_problems(_order(action=OrderAction.INTENT), paid)
    assert purchase_problems(_order(kind=OrderKind.PLAN), paid)
    subscription = stripe_objects.checkout_payment(_session(mode="subscription"))
    assert purchase_problems(_order(), subscription)


def test_replays_match_the_first_request_only() -> None:
    first = _order()
    assert first.same_request(_order(ref="ord_2"))
    assert not first.same_request(_order(pack_id="credits_10"))
    assert not first.same_request(_order(action=OrderAction.INTENT))
    plan = _order(kind=OrderKind.PLAN, plan_id="pro")
    assert plan.same_request(_order(kind=OrderKind.PLAN, plan_id="pro", action=OrderAction.UPDATE))
    assert not plan.same_request(_order(kind=OrderKind.PLAN, plan_id="enterprise"))


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
        "metadata": {
            "studiox_user_id": "u1",
            "studiox_credits": "50",
            "studiox_pack_id": "p",
            "studiox_order": "ord_1",
        },
        **over,
    }


def test_a_checkout_session_is_read_with_its_state_and_order() -> None:
    paid = stripe_objects.checkout_payment(_session(url="https://pay"))
    assert (paid.id, paid.customer_id, paid.amount_cents, paid.order_ref) == (
        "cs_1",
        "cus_1",
        2000,
        "ord_1",
    )
    assert (paid.status, checkout_state(paid), paid.url) == (PaymentStatus.SUCCEEDED, "paid", "")
    unpaid = stripe_objects.checkout_payment(
        _session(status="open", payment_status="unpaid", url="https://pay")
    )
    assert (unpaid.status, checkout_state(unpaid), unpaid.url) == (
        PaymentStatus.PENDING,
        "open",
        "https://pay",
    )
    expired = stripe_objects.checkout_payment(_session(status="expired", payment_status="unpaid"))
    assert (expired.status, checkout_state(expired)) == (PaymentStatus.EXPIRED, "expired")
    assert stripe_objects.checkout_payment(_session(metadata={})).order_ref is None


def test_intents_are_read_and_only_direct_ones_are_purchases() -> None:
    intent = {
        "id": "pi_1",
        "status": "succeeded",
        "amount": 500,
        "amount_received": 500,
        "currency": "usd",
        "customer": {"id": "cus_1", "object": "customer"},
        "metadata": {"studiox_purchase": "direct", "studiox_order": "ord_1"},
    }
    payment = stripe_objects.intent_payment(intent)
    assert (payment.action, payment.customer_id, payment.status) == (
        OrderAction.INTENT,
        "cus_1",
        PaymentStatus.SUCCEEDED,
    )
    assert stripe_objects.purchase_kind(intent) == "direct"
    assert stripe_objects.purchase_kind({**intent, "metadata": {}}) is None
    with pytest.raises(Refused):  # "succeeded" for less than it asked
        stripe_objects.intent_payment({**intent, "amount_received": 1})
    assert stripe_objects.intent_status("requires_payment_method") is PaymentStatus.FAILED
    assert stripe_objects.intent_status("requires_action") is PaymentStatus.PENDING


@pytest.mark.parametrize(
    "change",
    [
        {"id": "cs_\u0000"},
        {"id": "cs_" + "x" * 300},
        {"customer": "cus_\u0000"},
        {"amount_total": 2**31},
        {"amount_total": -1},
        {"amount_total": True},
        {"amount_total": "2000"},
        {"currency": "US\u0000"},
        {"metadata": {"studiox_order": "ord\u0000"}},
        {"metadata": {"studiox_order": "x" * 501}},
        {"metadata": "nope"},
        {"status": "open\u0000"},
    ],
)
def test_values_no_stripe_object_carries_are_refused(change: dict[str, object]) -> None:
    with pytest.raises(Refused):
        stripe_objects.checkout_payment(_session(**change))


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
    with pytest.raises(Refused):
        stripe_objects.subscription({"id": "sub_1"}, {})


def test_a_subscription_carries_its_price_and_whether_its_invoice_is_paid() -> None:
    raw = {
        "id": "sub_1",
        "customer": "cus_1",
        "status": "active",
        "created": 1_700_000_000,
        "latest_invoice": {"id": "in_1", "status": "paid"},
        "items": {
            "data": [{"id": "si_1", "price": {"id": "p", "unit_amount": 1999, "currency": "usd"}}]
        },
    }
    parsed = stripe_objects.subscription(raw, {"p": "pro"})
    assert (parsed.price_cents, parsed.currency, parsed.latest_invoice_id) == (1999, "usd", "in_1")
    assert parsed.paid
    assert not stripe_objects.subscription({**raw, "latest_invoice": "in_1"}, {}).paid
    open_invoice = {**raw, "latest_invoice": {"id": "in_1", "status": "open"}}
    assert not stripe_objects.subscription(open_invoice, {}).paid
    assert not stripe_objects.subscription({**raw, "status": "past_due"}, {}).paid


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
    paid_by = {
        **new,
        "payments": {
            "data": [{"payment": {"type": "payment_intent", "payment_intent": "pi_9"}}],
        },
    }
    assert stripe_objects.invoice(paid_by).payment_intent_id == "pi_9"
    assert stripe_objects.invoice({**old, "payment_intent": "pi_8"}).payment_intent_id == "pi_8"
    invoice = stripe_objects.invoice({**new, "status": "open"})
    assert invoice.payment_status(failed=True) is PaymentStatus.FAILED
    assert invoice.payment_status(failed=False) is PaymentStatus.PENDING
    assert stripe_objects.invoice({**new, "status": "paid"}).payment_status(failed=True) is (
        PaymentStatus.SUCCEEDED
    )
    for hostile in ({"amount_paid": 2**31}, {"amount_paid": -1}, {"customer": "cus_\u0000"}):
        with pytest.raises(Refused):
            stripe_objects.invoice({**new, **hostile})


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"id": "evt_1", "type": "x", "created": 1},
        {"id": "evt_1", "type": "x", "created": "now", "data": {"object": {}}},
        {"id": 5, "type": "x", "created": 1, "data": {"object": {}}},
        {"id": "evt_\u0000", "type": "x", "created": 1, "data": {"object": {}}},
        {"id": "evt_1", "type": "x\u0000", "created": 1, "data": {"object": {}}},
        {"id": "evt_" + "1" * 300, "type": "x", "created": 1, "data": {"object": {}}},
        {"id": "evt_1", "type": "x", "created": 10**13, "data": {"object": {}}},
        {"id": "evt_1", "type": "x", "created": -1, "data": {"object": {}}},
        {"id": "evt_1", "type": "x", "created": True, "data": {"object": {}}},
        {"id": "evt_1", "type": "x", "created": 1, "data": {"object": [1]}},
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
        (body, sign(body, SECRET, timestamp=now + 301)),  # from the future
        (body, sign(body, SECRET, timestamp=now + 10**12)),
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
