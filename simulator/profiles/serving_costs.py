"""What one forward pass of a batching engine costs: a prefill pass, a decode iteration, by batch and tokens.

A vLLM-like engine does not serve a request alone: each *iteration* it runs one forward pass over every
request it holds. A prefill pass reads the prompts of newly admitted requests (its cost grows with the
batch's prompt tokens); a decode iteration generates one token for each of `batch_size` running requests
and reads their KV cache (`context_tokens` between them). A profile's serving tables measure such passes
at a few batch sizes and token counts; this module fills in the rest, as pure vectorised functions.

How (per table and per quantity: time, CPU energy, GPU energy):

1. **Along tokens, per measured batch size**: a monotone piecewise-cubic (PCHIP) curve in log-log space
   (log tokens against log value; against the value itself where a quantity is not always positive, e.g.
   a CPU energy of 0 where only the GPUs were metered). PCHIP because it passes through every measured
   point and never overshoots: between two neighbouring measurements the curve stays between them and
   is monotone, so a noisy table cannot invent a cheaper or dearer pass than either neighbour. Log-log
   because pass costs grow as powers of tokens (linear for a memory-bound decode, up to quadratic for
   long prefills); past its own ends a row continues as the power law through its last two points.
   A batch size measured at only one token count (Splitwise measured batches 2-64 at one prompt length
   only) borrows the growth of the nearest batch size measured at two or more, as a power law (a least-
   squares line through that row in the transformed space) moved to pass through its one point: the
   fitted line rather than the row's own curve, so that the wobble of one noisy row is not copied
   into every row that borrows from it.
2. **Across batch sizes**: piecewise linear in (log batch, log value) between the two measured batch sizes
   that bracket the request, i.e. a power law between neighbours: monotone between them and exact at
   them, with no overshoot in either direction; past the largest (or smallest) batch size measured, the
   last segment's power law continues.

Exact at every measured point (both steps reproduce their knots), monotone between neighbouring measured
points along either axis. Outside the measured range (batch sizes, and tokens from the table's smallest to
largest) the request-level contract holds: `out_of_range="error"` raises `ProfileRangeError` naming the
profile, table, axis and range; `"clamp"` prices at the nearest measured value; `"extrapolate"` continues
the curves (one warning per model).
"""

from __future__ import annotations

import bisect
import math
import warnings

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.interpolate import PchipInterpolator

from hybridsim.core.errors import HybridsimError
from hybridsim.core.profile_model import DECODE_KEYS, PREFILL_KEYS, PassCost, Profile, ServingCostModel
from hybridsim.core.serving_checks import ok_rows

from .cost_models import outside_ranges

OUT_OF_RANGE = ("error", "clamp", "extrapolate")
QUANTITIES = ("time_s", "cpu_energy_j", "gpu_energy_j")


def build_serving_cost_model(profile: Profile, out_of_range: str = "error") -> ServingCostModel:
    """The cost of one prefill pass and one decode iteration on `profile`'s system (module docstring)."""
    if out_of_range not in OUT_OF_RANGE:
        raise HybridsimError(f"out_of_range: {out_of_range!r} is not one of {', '.join(OUT_OF_RANGE)}")
    if profile.serving is None:
        raise HybridsimError(
            f"profile {profile.name}: no serving tables (serving_prefill.csv, serving_decode.csv); batched "
            "serving needs a profile that measured passes: `hybridsim calibrate --serving` or a built-in "
            "such as splitwise-a100/llama2-70b-tp8"
        )
    return InterpolatedServingModel(profile, out_of_range)


class _Row:
    """Every quantity along tokens at one batch size (step 1 of the module docstring), in transformed space:
    `y` holds one column per quantity, so that one PCHIP evaluation prices them all."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.x, self.y = x, y
        # scipy's PCHIP (Fritsch-Carlson) derivatives at the knots; the cubic Hermite pieces between them are
        # evaluated below with plain numpy, which is what makes pricing one pass at a time cheap.
        self.derivatives = PchipInterpolator(x, y, axis=0).derivative()(x)
        self.slopes = ((y[1] - y[0]) / (x[1] - x[0]), (y[-1] - y[-2]) / (x[-1] - x[-2]))

        # The same cubic per interval as polynomial coefficients in t = (x - x_i) / h_i, for one pass at a
        # time.
        h = np.diff(x)[:, None]
        y0, y1, d0, d1 = y[:-1], y[1:], h * self.derivatives[:-1], h * self.derivatives[1:]
        self.polynomials = [
            tuple(part)
            for part in zip(y0, d0, -3 * y0 - 2 * d0 + 3 * y1 - d1, 2 * y0 + d0 - 2 * y1 + d1, strict=True)
        ]
        self.knots = [float(v) for v in x]

    def one(self, x: float) -> np.ndarray:
        """The row at one (log) token count: the same values as `__call__`, without array overhead."""
        knots = self.knots
        if x < knots[0]:
            return self.y[0] + self.slopes[0] * (x - knots[0])
        if x > knots[-1]:
            return self.y[-1] + self.slopes[1] * (x - knots[-1])
        i = min(bisect.bisect_right(knots, x) - 1, len(knots) - 2)
        t = (x - knots[i]) / (knots[i + 1] - knots[i])
        c0, c1, c2, c3 = self.polynomials[i]
        return c0 + t * (c1 + t * (c2 + t * c3))

    def _hermite(self, x: np.ndarray) -> np.ndarray:
        knots, values, slopes = self.x, self.y, self.derivatives
        i = np.clip(np.searchsorted(knots, x, side="right") - 1, 0, len(knots) - 2)
        h = (knots[i + 1] - knots[i])[:, None]
        t = (x - knots[i])[:, None] / h
        return (
            (1 + 2 * t) * (1 - t) ** 2 * values[i]
            + t * (1 - t) ** 2 * h * slopes[i]
            + t**2 * (3 - 2 * t) * values[i + 1]
            + t**2 * (t - 1) * h * slopes[i + 1]
        )

    def __call__(self, x: np.ndarray) -> np.ndarray:
        inside = self._hermite(np.clip(x, self.x[0], self.x[-1]))
        column = x[:, None]
        below = self.y[0] + self.slopes[0] * (column - self.x[0])
        above = self.y[-1] + self.slopes[1] * (column - self.x[-1])
        return np.where(column < self.x[0], below, np.where(column > self.x[-1], above, inside))


class _Borrowed:
    """A batch size measured at one token count: the nearest fuller row's fitted growth, through its point."""

    def __init__(self, shape: _Row, x0: float, y0: np.ndarray) -> None:
        self.slope = np.polyfit(shape.x, shape.y, 1)[0]
        self.x0, self.y0 = x0, y0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.y0 + self.slope * (x[:, None] - self.x0)

    def one(self, x: float) -> np.ndarray:
        return self.y0 + self.slope * (x - self.x0)


class _Table:
    """One serving table (prefill or decode) as a function of (batch size, tokens): its ranges, and rows
    along tokens joined across batch sizes (steps 1 and 2 of the module docstring), all quantities at once."""

    def __init__(self, table: pd.DataFrame, keys: tuple[str, ...], where: str) -> None:
        measured = ok_rows(table)
        self.keys, self.where = keys, where
        batch, tokens = keys
        self.batch_range = (int(measured[batch].min()), int(measured[batch].max()))
        self.token_range = (int(measured[tokens].min()), int(measured[tokens].max()))
        values = measured[[f"{q}_mean" for q in QUANTITIES]].to_numpy(dtype=float)
        self.log_columns = np.all(values > 0, axis=0)
        """Quantities interpolated in log space (always positive); the others in their own units."""
        rows: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for size, group in measured.groupby(batch, sort=True):
            group = group.sort_values(tokens)
            y = group[[f"{q}_mean" for q in QUANTITIES]].to_numpy(dtype=float, copy=True)
            y[:, self.log_columns] = np.log(y[:, self.log_columns])
            rows[int(size)] = (np.log(group[tokens].to_numpy(dtype=float)), y)
        full = {size: _Row(x, y) for size, (x, y) in rows.items() if len(x) > 1}
        if not full:
            raise HybridsimError(
                f"{where}: needs at least one batch size measured at two or more token counts "
                "(to know how cost grows with tokens)"
            )
        self.batch_log = np.log(np.array(sorted(rows), dtype=float))
        self.batch_knots = [float(v) for v in self.batch_log]
        self.rows: list[_Row | _Borrowed] = []
        for size in sorted(rows):
            if size in full:
                self.rows.append(full[size])
            else:
                nearest = min(full, key=lambda other: (abs(np.log(other / size)), other))
                x, y = rows[size]
                self.rows.append(_Borrowed(full[nearest], float(x[0]), y[0]))

    def __call__(self, batch_log: np.ndarray, tokens_log: np.ndarray) -> np.ndarray:
        """(passes, quantities) in natural units; only the two rows that bracket a pass are evaluated."""
        if len(self.rows) == 1:
            values = self.rows[0](tokens_log)
        else:
            knots = self.batch_log
            low = np.clip(np.searchsorted(knots, batch_log, side="right") - 1, 0, len(knots) - 2)
            weight = ((batch_log - knots[low]) / (knots[low + 1] - knots[low]))[:, None]
            values = np.empty((batch_log.size, len(QUANTITIES)))
            for index in np.unique(low):
                chosen = low == index
                at = tokens_log[chosen]
                share = weight[chosen]
                values[chosen] = self.rows[index](at) * (1.0 - share) + self.rows[index + 1](at) * share
        values[:, self.log_columns] = np.exp(values[:, self.log_columns])
        return values

    def one(self, batch_log: float, tokens_log: float) -> np.ndarray:
        """The quantities of one pass (natural units): `__call__` for a single
        pass, without array overhead.
        """
        if len(self.rows) == 1:
            values = self.rows[0].one(tokens_log)
        else:
            knots = self.batch_knots
            low = min(max(bisect.bisect_right(knots, batch_log) - 1, 0), len(knots) - 2)
            weight = (batch_log - knots[low]) / (knots[low + 1] - knots[low])
            values = (
                self.rows[low].one(tokens_log) * (1.0 - weight) + self.rows[low + 1].one(tokens_log) * weight
            )
        return np.where(self.log_columns, np.exp(values), values)


class InterpolatedServingModel:
    """A profile's serving tables, interpolated as the module docstring says."""

    def __init__(self, profile: Profile, out_of_range: str) -> None:
        assert profile.serving is not None
        self.name, self.out_of_range = profile.name, out_of_range
        self.kv_capacity_tokens = profile.serving.kv_capacity_tokens
        self.energy_source = profile.serving.energy_source
        self._warned = False
        self.tables = {
            "prefill": _Table(profile.serving.prefill, PREFILL_KEYS, f"profile {profile.name}: prefill"),
            "decode": _Table(profile.serving.decode, DECODE_KEYS, f"profile {profile.name}: decode"),
        }
        prefill, decode = self.tables["prefill"].batch_range, self.tables["decode"].batch_range
        self.batch_range = (max(prefill[0], decode[0]), min(prefill[1], decode[1]))

    def prefill(self, batch_size: ArrayLike, prompt_tokens: ArrayLike) -> PassCost:
        return self._price("prefill", batch_size, prompt_tokens)

    def decode(self, batch_size: ArrayLike, context_tokens: ArrayLike) -> PassCost:
        return self._price("decode", batch_size, context_tokens)

    def _price(self, which: str, batch_size: ArrayLike, tokens: ArrayLike) -> PassCost:
        table = self.tables[which]
        if np.ndim(batch_size) == 0 and np.ndim(tokens) == 0:
            return self._price_one(table, float(batch_size), float(tokens))  # type: ignore[arg-type]
        batch, count = np.broadcast_arrays(
            np.asarray(batch_size, dtype=np.float64), np.asarray(tokens, dtype=np.float64)
        )
        shape = batch.shape
        batch, count = self._in_range(table, batch.ravel(), count.ravel())
        values = table(np.log(batch), np.log(count))
        return PassCost(
            time_s=values[:, 0].reshape(shape),
            cpu_energy_j=values[:, 1].reshape(shape),
            gpu_energy_j=values[:, 2].reshape(shape),
        )

    def _price_one(self, table: _Table, batch: float, count: float) -> PassCost:
        """One pass (an event loop prices one iteration at a time): the same contract and values as the
        vectorised path, at a fraction of its fixed cost."""
        (b_low, b_high), (t_low, t_high) = table.batch_range, table.token_range
        if b_low <= batch <= b_high and t_low <= count <= t_high:
            values = table.one(math.log(batch), math.log(count))
        else:
            (cut_batch,), (cut_count,) = self._in_range(table, np.array([batch]), np.array([count]))
            values = table.one(math.log(cut_batch), math.log(cut_count))
        return PassCost(
            time_s=np.asarray(values[0]),
            cpu_energy_j=np.asarray(values[1]),
            gpu_energy_j=np.asarray(values[2]),
        )

    def _in_range(self, table: _Table, batch: np.ndarray, count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Apply the out-of-range contract; non-positive sizes are an error whatever it is."""
        if (
            (batch < 1).any()
            or (count < 1).any()
            or not (np.isfinite(batch).all() and np.isfinite(count).all())
        ):
            raise HybridsimError(f"{table.where}: batch sizes and token counts must be finite and >= 1")
        outside = outside_ranges(
            table.where,
            ((table.keys[0], batch, table.batch_range), (table.keys[1], count, table.token_range)),
            self.out_of_range,
            "passes",
        )
        if self.out_of_range == "clamp":
            return np.clip(batch, *table.batch_range), np.clip(count, *table.token_range)
        if outside and not self._warned:
            self._warned = True
            warnings.warn(
                f"profile {self.name}: extrapolating serving costs beyond the measured range; "
                "costs there are not measured",
                stacklevel=4,
            )
        return batch, count
