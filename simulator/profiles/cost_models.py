"""What one request of m input and n output tokens costs on a profile's system: E(m, n) and R(m, n).

A profile measures two lines through the (m, n) plane: an *input sweep* (m varies, n = n0 fixed) and an
*output sweep* (n varies, m = m0 fixed), which cross at (m0, n0) (for the paper's data: prompt C, 32
output tokens). Requests land anywhere in the plane, so two cost models fill it in:

`interpolated` (realistic). Each measured quantity (runtime, CPU energy, GPU energy) along each sweep is a
monotone piecewise-cubic (PCHIP) curve in log-log space (in log tokens against the value where the value
is not always positive: CPU energy above an assumed idle can be negative). Off the sweeps the curves
combine by the **per-step rule**

    E(m, n) = E_out(n) + (n / n0) * (E_in(m) - E(m0, n0))

The paper ran without a KV cache, so each of the n generation steps re-reads the whole prompt: the extra
cost of a prompt longer than m0, measured at n0 steps, recurs n / n0 times. Both sweeps are reproduced
exactly; the crossing point was measured twice (once per sweep), and there the model returns the two
measurements' trial-weighted mean, which both curves share as a knot. Energy = CPU + GPU, each at least
0 J: where a curve continued past its ends (or a CPU share measured above an assumed idle) would fall
below zero, the component is taken as 0 J, since no request gives energy back.

Why this rule: predicting every cell of the measured 2-D grids that lies off both sweeps from the grid's
own row at n0 = 32 and column at m0 (tests/profiles/test_combination_rule.py), its energy error
(median / 90th percentile of |relative error|) is 3.6% / 11% on the Swing A100 9x9 grid (Llama-2 7B, GPU
energy; the worst cells are one-trial 8-token cells) and 1.7% / 8.6% on the M1 Pro Llama-2 grid
(CPU+GPU). The multiplicative rule E_in(m) * E_out(n) / E(m0, n0) gives 20% / 122% and 19% / 68%,
because it scales the output-length cost by the prompt factor measured at 32 tokens; the additive rule
E_in(m) + E_out(n) - E(m0, n0) gives 29% / 90% and 49% / 206%, because it charges a long prompt once
instead of once per step. Runtime: per-step 2.2% / 11% (Swing), 8.1% / 26% (M1, a noisier grid).

Where a profile also has a 'grid' sweep, points inside the grid's hull use piecewise-linear interpolation
in log-log space over every measured point (grid and sweeps); the per-step rule covers the rest.

`paper`: the published bilinear fits E = a0*m + a1*n + a2*m*n, R = b0*m + b1*n + b2*m*n. Kept to
reproduce the paper; they fit badly at small token counts and can go negative.

Token counts outside the measured range raise `ProfileRangeError` (`out_of_range="error"`), are clamped to
the nearest measured length (`"clamp"`), or continue each curve as a power law through its last two
points (`"extrapolate"`, one warning per model).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.interpolate import LinearNDInterpolator, PchipInterpolator

from hybridsim.core.errors import HybridsimError, ProfileRangeError
from hybridsim.core.profile_model import CostModel, Profile

OUT_OF_RANGE = ("error", "clamp", "extrapolate")
COMBINATIONS = ("per-step", "multiplicative", "additive")
"""Off-sweep rules; the first is the one used (the others are kept to measure it against)."""
QUANTITIES = ("runtime_s", "cpu_energy_j", "gpu_energy_j")


def build_cost_model(
    profile: Profile, method: str = "interpolated", out_of_range: str = "error", combination: str = "per-step"
) -> CostModel:
    """The `method` cost model of `profile` ('interpolated' or 'paper').

    `combination` picks the off-sweep rule of the interpolated model; 'multiplicative' and 'additive'
    exist to compare against (they fit the measured grids worse, see the module docstring).
    """
    if out_of_range not in OUT_OF_RANGE:
        raise HybridsimError(f"out_of_range: {out_of_range!r} is not one of {', '.join(OUT_OF_RANGE)}")
    if profile.points.empty and profile.serving is not None:
        raise HybridsimError(
            f"profile {profile.name}: serving-only (per-pass tables, no points.csv): it prices batched "
            "iterations, not whole requests served alone; use it with continuous batching"
        )
    if method == "interpolated":
        if combination not in COMBINATIONS:
            raise HybridsimError(f"combination: {combination!r} is not one of {', '.join(COMBINATIONS)}")
        return InterpolatedCostModel(profile, out_of_range, combination)
    if method == "paper":
        return PaperCostModel(profile, out_of_range)
    raise HybridsimError(
        f"profile {profile.name}: unknown cost model method {method!r} (interpolated, paper)"
    )


class _Curve:
    """One quantity along one sweep: PCHIP between knots, a straight line past the ends (both in the
    transformed space, so log-log curves continue as the power law through their last two knots)."""

    def __init__(self, tokens: np.ndarray, values: np.ndarray) -> None:
        self.log_values = bool(np.all(values > 0))
        self.x = np.log(tokens)
        self.y = np.log(values) if self.log_values else values
        self.pchip = PchipInterpolator(self.x, self.y, extrapolate=False)
        self.slopes = (np.diff(self.y[:2]) / np.diff(self.x[:2]), np.diff(self.y[-2:]) / np.diff(self.x[-2:]))

    def __call__(self, tokens: np.ndarray) -> np.ndarray:
        x = np.log(tokens)
        y = self.pchip(np.clip(x, self.x[0], self.x[-1]))
        y = np.where(x < self.x[0], self.y[0] + self.slopes[0] * (x - self.x[0]), y)
        y = np.where(x > self.x[-1], self.y[-1] + self.slopes[1] * (x - self.x[-1]), y)
        return np.exp(y) if self.log_values else y


def outside_mask(model: CostModel, input_tokens: ArrayLike, output_tokens: ArrayLike) -> np.ndarray:
    """True where a request's input or output length lies outside `model`'s measured range."""
    (m_low, m_high), (n_low, n_high) = model.input_range, model.output_range
    m, n = np.asarray(input_tokens, dtype=np.float64), np.asarray(output_tokens, dtype=np.float64)
    return (m < m_low) | (m > m_high) | (n < n_low) | (n > n_high)


def range_excess(model: CostModel, input_tokens: ArrayLike, output_tokens: ArrayLike) -> str:
    """Where requests leave `model`'s measured range, per axis and side ("3 with
    input tokens 6-8 below 9").
    """
    parts = []
    for axis, tokens, (low, high) in (
        ("input", input_tokens, model.input_range),
        ("output", output_tokens, model.output_range),
    ):
        values = np.asarray(tokens, dtype=np.float64)
        for side, bad, bound in (
            ("below", values[values < low], low),
            ("above", values[values > high], high),
        ):
            if bad.size:
                span = f"{bad.min():g}" if bad.min() == bad.max() else f"{bad.min():g}-{bad.max():g}"
                parts.append(f"{bad.size:,} with {axis} tokens {span} {side} {bound:g}")
    return "; ".join(parts)


def outside_message(model: CostModel, profile: str, input_tokens: ArrayLike, output_tokens: ArrayLike) -> str:
    """Why requests are refused under out_of_range: error: how many of them leave `profile`'s measured range,
    the range, and where they leave it, per axis and side (the caller adds where and what to set)."""
    m, n = np.asarray(input_tokens, dtype=np.float64), np.asarray(output_tokens, dtype=np.float64)
    strays = outside_mask(model, m, n)
    (m_lo, m_hi), (n_lo, n_hi) = model.input_range, model.output_range
    return (
        f"{int(strays.sum()):,} of {m.size:,} requests fall outside profile {profile}'s measured range "
        f"(input {m_lo:g}-{m_hi:g}, output {n_lo:g}-{n_hi:g} tokens): "
        f"{range_excess(model, m[strays], n[strays])}"
    )


def outside_ranges(
    where: str,
    axes: Iterable[tuple[str, np.ndarray, tuple[float, float]]],
    out_of_range: str,
    noun: str,
) -> bool:
    """Whether any value lies outside its axis's measured (low, high) range; with `out_of_range="error"`,
    a `ProfileRangeError` naming the worst value instead. Shared by per-request and per-pass costs."""
    outside = False
    for axis, values, (low, high) in axes:
        bad = (values < low) | (values > high)
        if not bad.any():
            continue
        outside = True
        if out_of_range == "error":
            worst = values[bad].max() if (values > high).any() else values[bad].min()
            raise ProfileRangeError(
                f"{where}: {axis} {worst:g} outside the measured range {low:g}-{high:g} "
                f"({int(bad.sum())} of {bad.size} {noun}; out_of_range: clamp or extrapolate allows them)"
            )
    return outside


class _RangedModel:
    """Shared handling of token counts outside the range a model may be used over."""

    name: str
    input_range: tuple[float, float]
    output_range: tuple[float, float]
    out_of_range: str
    _warned: bool = False

    def _tokens(self, input_tokens: ArrayLike, output_tokens: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        m, n = np.broadcast_arrays(
            np.asarray(input_tokens, dtype=np.float64), np.asarray(output_tokens, dtype=np.float64)
        )
        outside = outside_ranges(
            f"profile {self.name}",
            (("input tokens", m, self.input_range), ("output tokens", n, self.output_range)),
            self.out_of_range,
            "requests",
        )
        if self.out_of_range == "clamp":
            return np.clip(m, *self.input_range), np.clip(n, *self.output_range)
        if outside and not self._warned:
            self._warned = True
            warnings.warn(
                f"profile {self.name}: extrapolating beyond the measured range (input "
                f"{self.input_range[0]:g}-{self.input_range[1]:g}, output {self.output_range[0]:g}-"
                f"{self.output_range[1]:g} tokens); costs there are not measured",
                stacklevel=3,
            )
        return m, n


class InterpolatedCostModel(_RangedModel):
    """Interpolation of the measured sweeps (and grid), combined by the rule in the module docstring."""

    def __init__(self, profile: Profile, out_of_range: str, combination: str) -> None:
        self.name, self.out_of_range, self.combination = profile.name, out_of_range, combination
        by_input, by_output = profile.sweep("input"), profile.sweep("output")
        if len(by_input) < 2 or len(by_output) < 2:
            raise HybridsimError(
                f"profile {profile.name}: the interpolated model needs input and output "
                "sweeps of at least two points each"
            )
        n0s, m0s = by_input["output_tokens"].unique(), by_output["input_tokens"].unique()
        if len(n0s) != 1 or len(m0s) != 1:
            raise HybridsimError(f"profile {profile.name}: each sweep must hold its other axis fixed")
        self.m0, self.n0 = float(m0s[0]), float(n0s[0])
        grid = profile.sweep("grid")
        m_all = np.concatenate([by_input["input_tokens"], grid["input_tokens"]]).astype(float)
        n_all = np.concatenate([by_output["output_tokens"], grid["output_tokens"]]).astype(float)
        self.input_range = (float(m_all.min()), float(m_all.max()))
        self.output_range = (float(n_all.min()), float(n_all.max()))
        if not (
            self.input_range[0] <= self.m0 <= self.input_range[1]
            and self.output_range[0] <= self.n0 <= self.output_range[1]
        ):
            raise HybridsimError(
                f"profile {profile.name}: the sweeps do not cross (input sweep at "
                f"{self.n0:g} output tokens, output sweep at {self.m0:g} input tokens)"
            )
        self.curves: dict[str, tuple[_Curve, _Curve, float]] = {}
        for quantity in QUANTITIES:
            column = f"{quantity}_mean"
            anchor = _pooled_anchor(
                by_input, "input_tokens", self.m0, by_output, "output_tokens", self.n0, column
            )
            self.curves[quantity] = (
                _curve(by_input, "input_tokens", self.m0, anchor, column),
                _curve(by_output, "output_tokens", self.n0, anchor, column),
                anchor,
            )
        self.grid = (
            _grid_interpolators(pd.concat([by_input, by_output, grid], ignore_index=True))
            if len(grid)
            else None
        )

    def _evaluate(self, quantity: str, m: np.ndarray, n: np.ndarray) -> np.ndarray:
        """`quantity` at token counts already checked against the range (`_tokens`)."""
        along_input, along_output, anchor = self.curves[quantity]
        if self.combination == "per-step":
            values = along_output(n) + n / self.n0 * (along_input(m) - anchor)
        elif self.combination == "multiplicative":
            values = along_input(m) * along_output(n) / anchor
        else:
            values = along_input(m) + along_output(n) - anchor
        if self.grid is not None:
            inside = self.grid[quantity](np.log(m), np.log(n))
            values = np.where(np.isnan(inside), values, inside)
        return np.asarray(values, dtype=np.float64)

    def runtime_s(self, input_tokens: ArrayLike, output_tokens: ArrayLike) -> np.ndarray:
        return self._evaluate("runtime_s", *self._tokens(input_tokens, output_tokens))

    def _energy(self, quantity: str, m: np.ndarray, n: np.ndarray) -> np.ndarray:
        """A component's energy, never below 0 J (see the module docstring)."""
        return np.maximum(self._evaluate(quantity, m, n), 0.0)

    def cpu_energy_j(self, input_tokens: ArrayLike, output_tokens: ArrayLike) -> np.ndarray:
        return self._energy("cpu_energy_j", *self._tokens(input_tokens, output_tokens))

    def gpu_energy_j(self, input_tokens: ArrayLike, output_tokens: ArrayLike) -> np.ndarray:
        return self._energy("gpu_energy_j", *self._tokens(input_tokens, output_tokens))

    def energy_j(self, input_tokens: ArrayLike, output_tokens: ArrayLike) -> np.ndarray:
        m, n = self._tokens(input_tokens, output_tokens)
        return self._energy("cpu_energy_j", m, n) + self._energy("gpu_energy_j", m, n)


def _value_at(rows: pd.DataFrame, axis: str, at: float, column: str) -> tuple[float, float]:
    """(value, weight) of a sweep at `at`: the measurement if there is one (weighted by its trials),
    else the interpolated value with weight 0."""
    hit = rows[rows[axis] == at]
    if len(hit):
        return float(hit[column].iloc[0]), float(hit["n_trials"].iloc[0])
    return float(_Curve(rows[axis].to_numpy(float), rows[column].to_numpy(float))(np.array(at))), 0.0


def _pooled_anchor(
    by_input: pd.DataFrame,
    input_axis: str,
    m0: float,
    by_output: pd.DataFrame,
    output_axis: str,
    n0: float,
    column: str,
) -> float:
    """The crossing point's value: the trial-weighted mean of what each sweep says there."""
    (a, wa), (b, wb) = (
        _value_at(by_input, input_axis, m0, column),
        _value_at(by_output, output_axis, n0, column),
    )
    return (a * wa + b * wb) / (wa + wb) if wa + wb else (a + b) / 2


def _curve(rows: pd.DataFrame, axis: str, at: float, anchor: float, column: str) -> _Curve:
    """The sweep's curve with the pooled anchor as its knot at the crossing point."""
    knots = dict(zip(rows[axis].astype(float), rows[column].astype(float), strict=True))
    knots[at] = anchor
    tokens = np.array(sorted(knots))
    return _Curve(tokens, np.array([knots[t] for t in tokens]))


class _Scattered:
    """Piecewise-linear interpolation over a Delaunay triangulation in (log m, log
    n); NaN outside its hull.
    """

    def __init__(self, points: np.ndarray, values: np.ndarray) -> None:
        self.log_values = bool(np.all(values > 0))
        self.interpolate = LinearNDInterpolator(points, np.log(values) if self.log_values else values)

    def __call__(self, log_m: np.ndarray, log_n: np.ndarray) -> np.ndarray:
        values = self.interpolate(log_m, log_n)
        return np.exp(values) if self.log_values else values


def _grid_interpolators(rows: pd.DataFrame) -> dict[str, _Scattered]:
    """One `_Scattered` per quantity over every measured point (cells measured twice: trial-weighted mean)."""
    columns = [f"{q}_mean" for q in QUANTITIES]
    weighted = (
        rows[columns]
        .mul(rows["n_trials"], axis=0)
        .assign(n_trials=rows["n_trials"], m=rows["input_tokens"], n=rows["output_tokens"])
    )
    cells = weighted.groupby(["m", "n"]).sum()
    points = np.log(np.array(cells.index.tolist(), dtype=float))
    return {
        quantity: _Scattered(points, (cells[column] / cells["n_trials"]).to_numpy())
        for quantity, column in zip(QUANTITIES, columns, strict=True)
    }


class PaperCostModel(_RangedModel):
    """The paper's bilinear fits (reference README §5): reproduce the paper, not the machine."""

    def __init__(self, profile: Profile, out_of_range: str) -> None:
        fit = profile.paper_fit
        if fit is None:
            raise HybridsimError(
                f"profile {profile.name}: no published fit ('paper' cost model); use method 'interpolated'"
            )
        self.name, self.out_of_range, self.fit = profile.name, out_of_range, fit
        # The fit's own grid if it says so, else the measured sweeps.
        points = pd.concat([profile.sweep("input"), profile.sweep("output")])
        self.input_range = fit.input_range or _span(points["input_tokens"])
        self.output_range = fit.output_range or _span(points["output_tokens"])
        # The fit models total energy; split it with the profile's measured CPU share when it covers the CPU.
        self.cpu_share = (
            0.0
            if fit.energy_scope.lower().startswith("gpu only")
            else float(points["cpu_energy_j_mean"].sum() / points["energy_j_mean"].sum())
        )
        warnings.warn(
            f"profile {profile.name}: the 'paper' cost model fits badly at small token counts and can "
            "go negative (e.g. -359 J for Swing Llama-2 at 541 input / 32 output tokens); use "
            "'interpolated' for realistic per-request costs",
            stacklevel=3,
        )

    @staticmethod
    def _bilinear(coefficients: tuple[float, float, float], m: np.ndarray, n: np.ndarray) -> np.ndarray:
        return coefficients[0] * m + coefficients[1] * n + coefficients[2] * m * n

    def energy_j(self, input_tokens: ArrayLike, output_tokens: ArrayLike) -> np.ndarray:
        return self._bilinear(self.fit.energy_coefficients, *self._tokens(input_tokens, output_tokens))

    def cpu_energy_j(self, input_tokens: ArrayLike, output_tokens: ArrayLike) -> np.ndarray:
        return self.cpu_share * self.energy_j(input_tokens, output_tokens)

    def gpu_energy_j(self, input_tokens: ArrayLike, output_tokens: ArrayLike) -> np.ndarray:
        return (1.0 - self.cpu_share) * self.energy_j(input_tokens, output_tokens)

    def runtime_s(self, input_tokens: ArrayLike, output_tokens: ArrayLike) -> np.ndarray:
        return self._bilinear(self.fit.runtime_coefficients, *self._tokens(input_tokens, output_tokens))


def _span(values: pd.Series) -> tuple[float, float]:
    return float(values.min()), float(values.max())
