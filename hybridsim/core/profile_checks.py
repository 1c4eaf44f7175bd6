"""Is this profile's data usable? The checks a damaged or hand-edited profile must pass before it prices
a single request.

A profile is a table of measured (input, output) settings with a mean runtime and energy each. One wrong
cell decides a whole run: a zero runtime divides throughput by zero, a negative energy makes a router
send everything to the system that "gives energy back", a NaN or an infinity poisons every sum it touches.
So a measured row (status `ok`, or no status column) must have a finite runtime above zero and a finite
total energy of at least zero; every token count must be a whole number from 1 to the token limit; no
number anywhere may be infinite. What stays accepted, on purpose: NaN spreads (`*_std` of a single trial),
NaN or negative *component* energies (CPU or GPU alone) as long as the total is >= 0, because subtracting
the idle baseline (the paper's eq. 7) can leave one component a little below zero by measurement noise;
rows of settings that could not be measured (`oom`, `skipped`, `error`) with no means at all.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hybridsim.core.errors import HybridsimError, shown
from hybridsim.core.limits import TOKENS_MAX

TOKEN_COLUMNS = ("input_tokens", "output_tokens")
POSITIVE_COLUMNS = ("runtime_s_mean",)
"""Must be finite and > 0 in every measured row."""
NON_NEGATIVE_COLUMNS = ("energy_j_mean",)
"""Must be finite and >= 0 in every measured row."""


def check_points(points: pd.DataFrame, path: Path) -> None:
    """Raise a one-line `HybridsimError` naming the file, row and column of the first unusable cell."""
    status = points["status"] if "status" in points.columns else pd.Series("ok", index=points.index)
    measured = (status.fillna("ok").astype(str) == "ok").to_numpy()
    for column in points.columns:
        if column == "sweep" or not pd.api.types.is_numeric_dtype(points[column]):
            continue
        values = points[column].to_numpy(dtype=np.float64)
        _first_bad(points, column, path, np.isinf(values), "is infinite")
    for column in TOKEN_COLUMNS:
        values = points[column].to_numpy(dtype=np.float64)
        bad = ~np.isfinite(values) | (values != np.round(values)) | (values < 1) | (values > TOKENS_MAX)
        _first_bad(points, column, path, bad, f"must be a whole number from 1 to {TOKENS_MAX:,}")
    for column in POSITIVE_COLUMNS:
        values = points[column].to_numpy(dtype=np.float64)
        bad = measured & ~(np.isfinite(values) & (values > 0))
        _first_bad(points, column, path, bad, "must be a finite number > 0 in a measured row (status ok)")
    for column in NON_NEGATIVE_COLUMNS:
        values = points[column].to_numpy(dtype=np.float64)
        bad = measured & ~(np.isfinite(values) & (values >= 0))
        _first_bad(points, column, path, bad, "must be a finite number >= 0 in a measured row (status ok)")
    if not measured.any():
        raise HybridsimError(f"{path}: no measured point (every row's status is oom, skipped or error)")


def _first_bad(points: pd.DataFrame, column: str, path: Path, bad: np.ndarray, rule: str) -> None:
    if bad.any():
        row = int(np.argmax(bad))
        raise HybridsimError(f"{path}: row {row + 2}: {column} {rule}, got {shown(points[column].iloc[row])}")


def is_finite_number(value: Any) -> bool:
    """A JSON number that is finite (not a bool, a string, NaN or inf)."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def check_fit_numbers(values: Any, where: str) -> tuple[float, float, float]:
    """Three finite numbers (a fit's coefficients), or a one-line error naming `where`."""
    if not isinstance(values, Sequence) or isinstance(values, str) or len(values) != 3:
        raise HybridsimError(f"{where}: expected 3 numbers, got {shown(values)}")
    numbers = []
    for value in values:
        if not is_finite_number(value):
            raise HybridsimError(f"{where}: {shown(value)} is not a finite number")
        numbers.append(float(value))
    return numbers[0], numbers[1], numbers[2]
