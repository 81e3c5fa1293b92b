"""The rules of pricing by usage, over random inputs: a price rule (services.task.pricing) and how
a reservation settles (services.credit.domain.settlement)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from services.credit.domain import settlement
from services.kit.features import FEATURES
from services.task.domain import TASK_COSTS
from services.task.pricing import MAX_USAGE_VALUE, PRICES, PriceRule

amounts = st.integers(min_value=0, max_value=1_000_000)
units = st.floats(min_value=0, max_value=MAX_USAGE_VALUE, allow_nan=False)
rules = st.builds(
    lambda base, extra, rate, flat: PriceRule(
        base=base,
        maximum=base + extra,
        flat_price=min(flat, base + extra),
        rate=rate,
        unit="seconds",
        input_field="durationSeconds",
    ),
    st.integers(min_value=1, max_value=100),
    st.integers(min_value=0, max_value=1000),
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal(50), places=2),
    st.integers(min_value=1, max_value=1000),
)


@given(held=amounts, cost=amounts)
def test_a_settlement_never_charges_above_the_hold_and_accounts_for_every_credit(
    held: int, cost: int
) -> None:
    split = settlement(held, cost)
    assert 0 <= split.charged <= held
    assert split.charged + split.returned == held
    assert split.charged + split.uncharged == cost
    assert split.uncharged == 0 or split.returned == 0


@given(rule=rules, asked=units, measured=units)
def test_a_rule_is_bounded_and_never_cheaper_for_more(
    rule: PriceRule, asked: float, measured: float
) -> None:
    low, high = sorted((asked, measured))
    assert rule.base <= rule.cost(low) <= rule.cost(high) <= rule.maximum
    named = {"durationSeconds": asked}
    reserved = rule.reservation(named)
    assert reserved == rule.cost(asked)
    # Measuring no more than was asked for never costs more than the reservation.
    assert rule.measured_cost(named, {"seconds": min(measured, asked)}, reserved) <= reserved


@given(rule=rules, measured=units)
def test_a_request_naming_no_usage_pays_the_flat_price(rule: PriceRule, measured: float) -> None:
    reserved = rule.reservation({"prompt": "x"})
    assert reserved == rule.flat_price
    assert rule.measured_cost({"prompt": "x"}, {"seconds": measured}, reserved) == reserved


def test_existing_types_keep_their_prices_as_flat_rules() -> None:
    assert set(PRICES) == set(FEATURES)
    assert TASK_COSTS == {"image_analysis": 1, "video_generation": 5, "advanced_editing": 3}
    for task_type in ("image_analysis", "advanced_editing"):
        rule = PRICES[task_type]
        asked = {"durationSeconds": 99}
        assert not rule.metered
        assert rule.reservation(asked) == rule.measured_cost(asked, {"seconds": 1}, rule.base)
    video = PRICES["video_generation"]
    assert (video.cost(4), video.cost(10), video.cost(10_000)) == (5, 11, video.maximum)
    # Video named without a duration: today's price, whatever the clip measured.
    assert video.measured_cost({"prompt": "x"}, {"seconds": 1}, 5) == 5
