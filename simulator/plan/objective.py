"""What a candidate costs and whether it is acceptable: the objective and the constraints of a plan.

Each run of a candidate (one seed) is read from its simulation summary: the objective is its energy (kWh),
its bill (energy x price per kWh + node-hours x price per node-hour, per pool) or its emissions (kg CO2,
priced by the grid intensity at the time each joule was spent). Constraints bound any figure of the
summary by its dotted path (`latency_s.p99`, `slo.attainment`, or a serving model's `ttft_s.p99`), and a
candidate with a saturated pool is refused unless the plan allows it. A candidate is feasible when every
seed's run meets every constraint; its objective is the mean over seeds with a 95% confidence interval
(Student's t).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

from hybridsim.core.errors import HybridsimError

from .schema import ConstraintSpec, ObjectiveSpec

OBJECTIVE_UNITS = {"energy": "kWh", "cost": "currency units", "carbon": "kg CO2"}
SATURATION = "no pool saturated"


def flatten(summary: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A run's summary as {dotted.path: number}: every numeric leaf (booleans and strings left out)."""
    flat: dict[str, Any] = {}
    for name, value in summary.items():
        path = f"{prefix}{name}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{path}."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[path] = value
    return flat


def run_objective(summary: dict[str, Any], objective: ObjectiveSpec) -> float:
    """The objective of one run, in `OBJECTIVE_UNITS[objective.kind]`."""
    kwh = float(summary["energy"]["total_kwh"])
    if objective.kind == "energy":
        return kwh
    if objective.kind == "carbon":
        return float(summary["carbon"]["total_kg"])
    hours = float(summary["horizon_s"]) / 3600.0
    nodes = sum(
        objective.node_hour.get(name, 0.0) * system["nodes"] for name, system in summary["systems"].items()
    )
    return kwh * float(objective.price_per_kwh or 0.0) + nodes * hours


def _violation(value: float | None, constraint: ConstraintSpec) -> float:
    """How far a value is outside a bound, relative to it (0: met; inf: no value)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return math.inf
    excess = 0.0
    if constraint.max is not None and value > constraint.max:
        excess = max(excess, (value - constraint.max) / max(abs(constraint.max), 1e-12))
    if constraint.min is not None and value < constraint.min:
        excess = max(excess, (constraint.min - value) / max(abs(constraint.min), 1e-12))
    return excess


def check_metrics(flat: dict[str, Any], constraints: list[ConstraintSpec], pareto_metric: str) -> None:
    """Refuse a constraint (or the Pareto axis) naming a figure that runs do not report."""
    for k, constraint in enumerate(constraints):
        if constraint.metric not in flat:
            raise HybridsimError(
                f"constraints.{k}.metric: no figure {constraint.metric!r} in a run's summary "
                f"(for example: {', '.join(sorted(flat)[:12])}, ...)"
            )
    if pareto_metric not in flat:
        raise HybridsimError(f"pareto_metric: no figure {pareto_metric!r} in a run's summary")


def violations(
    summary: dict[str, Any], constraints: list[ConstraintSpec], no_saturation: bool
) -> dict[str, float]:
    """Each constraint's relative violation for one run (0 where met), by its label."""
    flat = flatten(summary)
    found = {
        constraint.label: _violation(flat.get(constraint.metric), constraint) for constraint in constraints
    }
    if no_saturation:
        found[SATURATION] = float(len(summary["saturated"]))
    return found


def confidence_interval(values: np.ndarray, level: float = 0.95) -> tuple[float | None, float | None]:
    """Student's t interval of the mean; (None, None) with one value."""
    if values.size < 2:
        return None, None
    half = float(stats.t.ppf(0.5 + level / 2, values.size - 1) * values.std(ddof=1) / math.sqrt(values.size))
    mean = float(values.mean())
    return mean - half, mean + half


def aggregate(
    runs: list[dict[str, Any]],
    objective: ObjectiveSpec,
    constraints: list[ConstraintSpec],
    no_saturation: bool,
    pareto_metric: str,
) -> dict[str, Any]:
    """A candidate's row over its seeds' runs: objective mean and CI, worst violations, feasibility."""
    errors = [run["error"] for run in runs if "error" in run]
    if errors:
        return {"feasible": False, "error": errors[0], "failed": "error: " + errors[0], "violation": math.inf}
    values = np.array([run_objective(run, objective) for run in runs])
    low, high = confidence_interval(values)
    per_run = [violations(run, constraints, no_saturation) for run in runs]
    worst = {label: max(found[label] for found in per_run) for label in per_run[0]}
    failed = [label for label, excess in worst.items() if excess > 0]
    axis = np.array([flatten(run).get(pareto_metric, math.nan) for run in runs], dtype=float)
    energy = np.array([run["energy"]["total_kwh"] for run in runs])
    return {
        "objective": float(values.mean()),
        "objective_ci_low": low,
        "objective_ci_high": high,
        "energy_kwh": float(energy.mean()),
        "pareto_value": float(axis.mean()),
        "pareto_value_max": float(axis.max()),
        "saturated_runs": sum(1 for run in runs if run["saturated"]),
        "feasible": not failed,
        "failed": "; ".join(failed),
        "violation": float(sum(worst.values())),
    }


def describe_failure(
    row: dict[str, Any], runs: list[dict[str, Any]], constraints: list[ConstraintSpec]
) -> str:
    """Which constraints a candidate fails, with the worst value over its seeds."""
    if row.get("error"):
        return f"the run failed: {row['error']}"
    parts = []
    for constraint in constraints:
        values = [flatten(run).get(constraint.metric) for run in runs]
        worst = max(values, key=lambda value: _violation(value, constraint))
        if _violation(worst, constraint) > 0:
            shown = "no value" if worst is None else f"{worst:.4g}"
            parts.append(f"{constraint.label} (worst seed: {shown})")
    if SATURATION in row["failed"]:
        pools = sorted({name for run in runs for name in run["saturated"]})
        parts.append(f"{SATURATION} ({', '.join(pools)} saturated)")
    return "; ".join(parts)
