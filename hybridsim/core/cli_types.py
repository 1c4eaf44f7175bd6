"""Command-line numbers a simulation or a calibration can actually use.

click's `FloatRange` lets `nan` through (every comparison with nan is false) and accepts `inf`; Python
integers have no upper bound while numpy's int64 wraps at 2**63. These types refuse both at the edge, in
one line naming the option, so that no run starts with a number it cannot finish with.
"""

from __future__ import annotations

import math
from typing import Any

import click

from hybridsim.core.errors import HybridsimError
from hybridsim.core.limits import INT64_MAX, TOKENS_MAX

__all__ = ["INT64_MAX", "TOKENS_MAX", "FiniteFloat", "bounded_int"]


class FiniteFloat(click.ParamType):
    """A finite float, at least (or above) `minimum`; anything else is a one-line `HybridsimError`."""

    name = "number"

    def __init__(self, minimum: float = 0.0, strictly_above: bool = False) -> None:
        self.minimum = minimum
        self.strictly_above = strictly_above

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise HybridsimError(f"{_option(param)}: {value!r} is not a number") from None
        if not math.isfinite(number):
            raise HybridsimError(f"{_option(param)}: {value!r} is not a finite number")
        if number <= self.minimum if self.strictly_above else number < self.minimum:
            bound = f"{'>' if self.strictly_above else '>='} {self.minimum:g}"
            raise HybridsimError(f"{_option(param)}: must be {bound}, got {number:g}")
        return number


class BoundedInt(click.ParamType):
    """A whole number within [minimum, maximum] (by default a non-negative int64)."""

    name = "integer"

    def __init__(self, minimum: int = 0, maximum: int = INT64_MAX) -> None:
        self.minimum = minimum
        self.maximum = maximum

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise HybridsimError(f"{_option(param)}: {value!r} is not a valid integer") from None
        if number < self.minimum:
            raise HybridsimError(f"{_option(param)}: must be >= {self.minimum}, got {number}")
        if number > self.maximum:
            raise HybridsimError(f"{_option(param)}: {number} is beyond the limit of {self.maximum:,}")
        return number


def bounded_int(minimum: int = 0, maximum: int = INT64_MAX) -> BoundedInt:
    """An integer option within [minimum, maximum] (by default a non-negative int64)."""
    return BoundedInt(minimum, maximum)


def _option(param: click.Parameter | None) -> str:
    if param is None:
        return "value"
    return max(param.opts, key=len) if param.opts else str(param.name)
