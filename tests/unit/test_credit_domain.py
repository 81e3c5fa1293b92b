from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.credit.domain import Account, PlanTerms, add_months, days_until, period_containing
from services.credit.grant_rules import charge_refusal, refund_split
from services.kit.errors import FeatureNotInPlan, InsufficientCredits, InvalidInput, NotFound

FREE = PlanTerms("free", 10, False, ("image_analysis", "video_generation"))


def account(allowance: int = 3, purchased: int = 2) -> Account:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return Account("u", FREE, allowance, purchased, 0, now, now)


@pytest.mark.parametrize(
    ("anchor", "months", "expected"),
    [
        (datetime(2026, 1, 31, tzinfo=UTC), 1, datetime(2026, 2, 28, tzinfo=UTC)),
        (datetime(2028, 1, 31, tzinfo=UTC), 1, datetime(2028, 2, 29, tzinfo=UTC)),
        (datetime(2026, 1, 31, tzinfo=UTC), 2, datetime(2026, 3, 31, tzinfo=UTC)),
        (datetime(2026, 11, 15, tzinfo=UTC), 3, datetime(2027, 2, 15, tzinfo=UTC)),
        (datetime(2026, 3, 10, tzinfo=UTC), -3, datetime(2025, 12, 10, tzinfo=UTC)),
    ],
)
def test_add_months_clamps_to_month_end(anchor: datetime, months: int, expected: datetime) -> None:
    assert add_months(anchor, months) == expected


def test_period_containing_catches_up() -> None:
    anchor = datetime(2026, 1, 31, 8, tzinfo=UTC)
    start, end = period_containing(anchor, datetime(2026, 5, 2, tzinfo=UTC))
    assert (start, end) == (
        datetime(2026, 4, 30, 8, tzinfo=UTC),
        datetime(2026, 5, 31, 8, tzinfo=UTC),
    )
    start, end = period_containing(anchor, datetime(2026, 1, 31, 8, tzinfo=UTC))
    assert (start, end) == (anchor, datetime(2026, 2, 28, 8, tzinfo=UTC))


def test_refund_split_returns_purchased_first_and_never_more_than_left() -> None:
    assert refund_split(10, 2, 0, 0, 0) == (10, 2)
    assert refund_split(10, 2, 0, 0, 3) == (1, 2)
    assert refund_split(10, 2, 1, 2, 0) == (9, 0)
    with pytest.raises(InvalidInput):
        refund_split(10, 2, 0, 0, 13)


def test_charge_refusals_explain_why() -> None:
    assert isinstance(charge_refusal(None, 1, ""), NotFound)
    assert isinstance(charge_refusal(account(), 3, "advanced_editing"), FeatureNotInPlan)
    refusal = charge_refusal(account(), 9, "image_analysis")
    assert isinstance(refusal, InsufficientCredits)
    assert refusal.message == "Insufficient credits. Required: 9, Available: 5"


def test_days_until_rounds_up_and_never_goes_negative() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert days_until(now + timedelta(days=3, hours=1), now) == 4
    assert days_until(now + timedelta(days=3), now) == 3
    assert days_until(now - timedelta(days=1), now) == 0
