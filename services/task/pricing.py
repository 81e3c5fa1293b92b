"""Task prices as data: each type's rule, and the rules for reserving and charging by usage.

A rule is a base plus a rate per unit of what the work measures (seconds of output, megapixels),
at most a maximum. A request that names the units it wants (`inputData[inputField]`) is priced by
usage: creation reserves the rule's cost of those units, the worker reports what it measured, and
the task is charged the rule's cost of that, never above its reservation (the excess is recorded as
uncharged). A request that names none pays the flat price, today's price, reserved and charged as
before: callers that send nothing new see nothing change. Flat rules (no unit) cost their base.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from services.kit.errors import InvalidInput
from services.kit.features import TaskType

# Bounds on what a worker may report (anything else is a bug, refused as a 400).
MAX_USAGE_UNITS = 8
MAX_USAGE_VALUE = 1e9
_UNIT = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


@dataclass(frozen=True)
class PriceRule:
    base: int
    maximum: int
    # What a request that names no units reserves and pays.
    flat_price: int
    rate: Decimal = Decimal(0)
    unit: str = ""
    # The inputData field in which a request names the units it expects (an estimate).
    input_field: str = ""

    @classmethod
    def flat(cls, price: int) -> PriceRule:
        return cls(base=price, maximum=price, flat_price=price)

    @property
    def metered(self) -> bool:
        return bool(self.unit) and self.rate > 0

    def cost(self, units: float) -> int:
        """base + ceil(rate * units), at most the maximum; the base for a flat rule."""
        if not self.metered:
            return self.base
        variable = math.ceil(self.rate * Decimal(repr(float(units))))
        return min(self.maximum, self.base + variable)

    def priced_by_usage(self, input_data: Mapping[str, Any]) -> bool:
        return self.metered and self.input_field in input_data

    def reservation(self, input_data: Mapping[str, Any]) -> int:
        """The most this request can cost: its estimate when it names its units, else the flat
        price."""
        if not self.priced_by_usage(input_data):
            return self.flat_price
        raw = input_data[self.input_field]
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not _in_range(raw):
            raise InvalidInput(
                f"inputData.{self.input_field} must be a number between 0 and {MAX_USAGE_VALUE:g}"
            )
        return self.cost(raw)

    def measured_cost(
        self, input_data: Mapping[str, Any], usage: Mapping[str, float], reserved: int
    ) -> int:
        """What the work cost by what was measured (uncapped by the reservation: the ledger caps
        it and records the rest). A request priced flat, or nothing measured in the rule's unit:
        the reservation stands."""
        if not self.priced_by_usage(input_data) or self.unit not in usage:
            return reserved
        return self.cost(usage[self.unit])


# The catalog. Every type keeps the price it had before pricing by usage as its flat price; video
# generation is priced by the seconds of video produced when a request names the duration it wants.
PRICES: dict[str, PriceRule] = {
    TaskType.IMAGE_ANALYSIS.value: PriceRule.flat(1),
    TaskType.VIDEO_GENERATION.value: PriceRule(
        base=1,
        rate=Decimal(1),
        unit="seconds",
        input_field="durationSeconds",
        maximum=120,
        flat_price=5,
    ),
    TaskType.ADVANCED_EDITING.value: PriceRule.flat(3),
}


def check_usage(raw: Mapping[str, float]) -> dict[str, float]:
    """A worker's measured usage: a few named units, each a finite amount in range."""
    if len(raw) > MAX_USAGE_UNITS:
        raise InvalidInput(f"usage names at most {MAX_USAGE_UNITS} units")
    usage = {}
    for unit, value in raw.items():
        if not _UNIT.match(unit):
            raise InvalidInput("usage units are lowercase names of up to 32 characters")
        if not _in_range(value):
            raise InvalidInput(f"usage.{unit} must be a number between 0 and {MAX_USAGE_VALUE:g}")
        usage[unit] = float(value)
    return usage


def _in_range(value: float) -> bool:
    return math.isfinite(value) and 0 <= value <= MAX_USAGE_VALUE
