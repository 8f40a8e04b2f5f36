"""Allowed number ranges of config fields and model options (pure Python: loading a config imports no JAX)."""

import dataclasses
import math


@dataclasses.dataclass(frozen=True)
class Range:
    """The numbers from ``low`` to ``high``; an open end excludes its bound."""

    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def __str__(self) -> str:
        if self.high == math.inf:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        return f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"


POSITIVE = Range(0, low_open=True)
NON_NEGATIVE = Range(0)
AT_LEAST_ONE = Range(1)
UNIT_INTERVAL = Range(0, 1)
FRACTION = Range(0, 1, high_open=True)
