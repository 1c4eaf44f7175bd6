"""What a run's electricity emitted: its energy priced at the grid's carbon intensity when it was drawn.

An operator's grid is cleaner at noon (solar) than at night, so a joule spent at 3 a.m. can emit twice as
much CO2 as one spent at 1 p.m. Given the grid intensity (gCO2 per kWh) as a constant or as a time series,
each joule of a run is priced at the time it was spent:

* a request's *active* energy is drawn evenly over its service, from start to finish;
* a node's *idle* energy is drawn evenly over the times it served nothing (idle power x idle time).

The series is piecewise constant (each value holds from its time until the next), optionally repeating
with a period (a daily curve under a week-long run). Integrals of a piecewise-constant function are
piecewise linear, so every request's and node's emissions are exact differences of one cumulative curve:
no time binning. With a constant intensity the emissions are exactly energy x intensity.

With batching, requests that share a batch overlap in time on one node; a node's busy intervals are then
scaled to its measured busy time, which keeps idle emissions consistent with idle energy (exact without
batching, an approximation with it).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hybridsim.core.errors import HybridsimError

JOULES_PER_KWH = 3.6e6
TIME_COLUMN = "time_s"
INTENSITY_COLUMN = "g_per_kwh"


@dataclass(frozen=True)
class GridIntensity:
    """Grid carbon intensity over time: `values[k]` gCO2/kWh holds from `times_s[k]` to `times_s[k+1]`.

    Before the first time the first value holds, after the last the last one (or, with `period_s`, the
    series repeats: time t reads the series at t mod period). `offset_s` is the series time at which the
    simulated run starts (a run starting at 6 p.m. on a midnight-based daily curve: 64800).
    """

    times_s: np.ndarray
    values: np.ndarray
    period_s: float | None = None
    offset_s: float = 0.0
    source: str = "constant"

    @classmethod
    def constant(cls, g_per_kwh: float) -> GridIntensity:
        return cls(np.array([0.0]), np.array([float(g_per_kwh)]), None, 0.0, f"constant {g_per_kwh:g} g/kWh")

    def _value(self, t: np.ndarray) -> np.ndarray:
        """The series' value in force at series time t (the first value before the first time)."""
        return self.values[np.maximum(np.searchsorted(self.times_s, t, side="right") - 1, 0)]

    def _integral(self, t: np.ndarray) -> np.ndarray:
        """Integral of the series from series time 0 to t >= 0, ignoring the period (g/kWh x s)."""
        knots = np.concatenate(([0.0], self.times_s[self.times_s > 0]))
        in_force = self._value(knots)
        areas = np.concatenate(([0.0], np.cumsum(np.diff(knots) * in_force[:-1])))
        segment = np.searchsorted(knots, t, side="right") - 1
        return areas[segment] + (t - knots[segment]) * in_force[segment]

    def _series_integral(self, t: np.ndarray) -> np.ndarray:
        """Integral from series time 0 to t >= 0, repeating the series with its period if it has one."""
        if self.period_s is None:
            return self._integral(t)
        turns = np.floor(t / self.period_s)
        return turns * self._integral(np.array(self.period_s)) + self._integral(t - turns * self.period_s)

    def cumulative(self, t: np.ndarray) -> np.ndarray:
        """Integral of the intensity over run time [0, t] (g/kWh x s); t >= 0."""
        t = np.asarray(t, dtype=np.float64)
        offset = np.array(self.offset_s)
        return self._series_integral(t + offset) - self._series_integral(offset)

    def at(self, t: np.ndarray) -> np.ndarray:
        """The intensity in force at run time t (g/kWh)."""
        t = np.asarray(t, dtype=np.float64) + self.offset_s
        if self.period_s is not None:
            t = t - np.floor(t / self.period_s) * self.period_s
        return self._value(t)


def read_intensity(path: Path, period_s: float | None = None, offset_s: float = 0.0) -> GridIntensity:
    """A grid-intensity CSV with columns `time_s,g_per_kwh` (times increasing; lines starting # skipped)."""
    path = Path(path)
    if not path.is_file():
        raise HybridsimError(f"{path}: grid-intensity file not found")
    with path.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(line for line in handle if not line.startswith("#")))
    if not rows or not {TIME_COLUMN, INTENSITY_COLUMN} <= set(rows[0]):
        raise HybridsimError(f"{path}: needs columns {TIME_COLUMN},{INTENSITY_COLUMN} and at least one row")
    try:
        times = np.array([float(row[TIME_COLUMN]) for row in rows])
        values = np.array([float(row[INTENSITY_COLUMN]) for row in rows])
    except (TypeError, ValueError):
        raise HybridsimError(f"{path}: {TIME_COLUMN} and {INTENSITY_COLUMN} must be numbers") from None
    if not (np.isfinite(times).all() and np.isfinite(values).all()) or (values < 0).any():
        raise HybridsimError(f"{path}: {INTENSITY_COLUMN} must be finite and >= 0, times finite")
    if (np.diff(times) <= 0).any():
        raise HybridsimError(f"{path}: {TIME_COLUMN} must increase strictly")
    if period_s is not None and (times < 0).any() | (times >= period_s).any():
        raise HybridsimError(f"{path}: with period_s {period_s:g}, times must lie in [0, {period_s:g})")
    return GridIntensity(times, values, period_s, offset_s, str(path))


def _mean_over(intensity: GridIntensity, start: np.ndarray, finish: np.ndarray) -> np.ndarray:
    """Mean intensity over each interval [start, finish]; the intensity at start for an empty one."""
    span = finish - start
    area = intensity.cumulative(finish) - intensity.cumulative(start)
    point = intensity.at(start)
    safe = np.where(span > 0, span, 1.0)
    return np.where(span > 0, area / safe, point)


def emissions(result: Any, intensity: GridIntensity) -> dict[str, Any]:
    """A finished run's emissions (grams CO2), active and idle, per system and in total.

    `result` is an engine `RunResult`; its energy is what the summary reports, so the grams add up to
    energy x mean intensity.
    """
    table = result.table
    start, finish = table["start_s"], table["finish_s"]
    active_g = table["energy_j"] / JOULES_PER_KWH * _mean_over(intensity, start, finish)
    nodes = result.node_system.size
    node = table["node"]
    busy_area = np.bincount(
        node, weights=intensity.cumulative(finish) - intensity.cumulative(start), minlength=nodes
    )
    busy_span = np.bincount(node, weights=finish - start, minlength=nodes)
    busy_s = result.ledger["busy_s"]
    scale = np.divide(busy_s, busy_span, out=np.ones(nodes), where=busy_span > 0)
    whole = float(intensity.cumulative(np.array(result.horizon_s)))
    idle_area = np.maximum(whole - busy_area * scale, 0.0)
    idle_g = result.idle_power_w * idle_area / JOULES_PER_KWH
    code = table["system_code"]
    systems = {}
    for position, name in enumerate(result.systems):
        active = float(active_g[code == position].sum())
        idle = float(idle_g[result.node_system == position].sum())
        systems[name] = {"total_g": active + idle, "active_g": active, "idle_g": idle}
    active, idle = float(active_g.sum()), float(idle_g.sum())
    energy_kwh = (float(table["energy_j"].sum()) + float(result.idle_j.sum())) / JOULES_PER_KWH
    return {
        "intensity": intensity.source,
        "total_g": active + idle,
        "total_kg": (active + idle) / 1000.0,
        "active_g": active,
        "idle_g": idle,
        "mean_g_per_kwh": (active + idle) / energy_kwh if energy_kwh > 0 else None,
        "systems": systems,
    }


def intensity_from_spec(spec: Any, base_dir: Path | None) -> GridIntensity:
    """The intensity a scenario's `carbon:` section names (a `CarbonSpec`); a CSV path is read relative to
    the scenario's folder."""
    if spec.g_per_kwh is not None:
        return GridIntensity.constant(spec.g_per_kwh)
    path = Path(spec.intensity_csv)
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    try:
        return read_intensity(path, spec.period_s, spec.offset_s)
    except HybridsimError as error:
        raise HybridsimError(f"carbon.intensity_csv: {error}") from None
