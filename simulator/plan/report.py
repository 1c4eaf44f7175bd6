"""What a plan hands the operator: every candidate's figures, the trade-off curve, and two pictures.

* `candidates.csv` / `candidates.parquet`: one row per simulated candidate (its choices, the objective's
  mean over seeds with a 95% interval, the Pareto axis's mean and worst seed, feasibility and the
  constraints it failed, whether it is on the Pareto front);
* `runs.csv`: one row per candidate and seed, with the figures an operator checks first;
* `pareto.png`: objective against tail latency, every candidate, the feasible ones filled, the Pareto
  front (no other candidate is better in both) as a line;
* `heatmap.png` (when two node counts are searched): the best objective over the other choices at each
  pair of counts, cells with no feasible candidate hatched.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hybridsim.core.text import significant

from ..report.figures import PNG_METADATA, plt
from .objective import OBJECTIVE_UNITS, flatten
from .search import Evaluated
from .space import POLICY_DIMENSION

RUN_FIGURES = ("energy.total_kwh", "latency_s.p50", "latency_s.p99", "slo.attainment", "carbon.total_kg")


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats in both coordinates (lower is better), by first one."""
    order = sorted(range(len(points)), key=lambda k: (points[k][1], points[k][0], k))
    front, best = [], math.inf
    for k in order:
        value = points[k][0]
        if math.isfinite(value) and math.isfinite(points[k][1]) and value < best:
            front.append(k)
            best = value
    return front


def candidate_table(evaluated: list[Evaluated], front: list[int]) -> pd.DataFrame:
    rows = []
    on_front = set(front)
    for k, item in enumerate(evaluated):
        row = {"candidate": k, **{_column(path): value for path, value in item.choice.items()}}
        row.update({name: item.row.get(name) for name in _ROW_COLUMNS})
        row["pareto"] = k in on_front
        rows.append(row)
    return pd.DataFrame(rows)


_ROW_COLUMNS = (
    "objective",
    "objective_ci_low",
    "objective_ci_high",
    "energy_kwh",
    "pareto_value",
    "pareto_value_max",
    "saturated_runs",
    "feasible",
    "failed",
)


def _column(path: str) -> str:
    return path


def runs_table(evaluated: list[Evaluated], seeds: list[int]) -> pd.DataFrame:
    rows = []
    for k, item in enumerate(evaluated):
        for seed, run in zip(seeds, item.runs, strict=True):
            flat = flatten(run)
            row: dict[str, Any] = {"candidate": k, "seed": seed, "error": run.get("error")}
            row.update({path: flat.get(path) for path in RUN_FIGURES})
            row["saturated"] = ", ".join(run.get("saturated", []))
            rows.append(row)
    return pd.DataFrame(rows)


def write_tables(candidates: pd.DataFrame, runs: pd.DataFrame, out_dir: Path) -> list[str]:
    """CSV (and Parquet) files with fixed float formatting, so equal figures give equal bytes."""
    candidates.to_csv(out_dir / "candidates.csv", index=False, float_format="%.10g", lineterminator="\n")
    table = candidates.copy()
    for column in table.columns:  # mixed-type choice columns (numbers and strings) as text in Parquet
        if table[column].dtype == object:
            table[column] = table[column].map(lambda value: None if value is None else str(value))
    table.to_parquet(out_dir / "candidates.parquet", index=False, compression="zstd")
    runs.to_csv(out_dir / "runs.csv", index=False, float_format="%.10g", lineterminator="\n")
    return ["candidates.csv", "candidates.parquet", "runs.csv"]


def _save(figure: Any, out_dir: Path, name: str) -> str:
    figure.savefig(Path(out_dir) / name, dpi=120, bbox_inches="tight", metadata=PNG_METADATA)
    plt.close(figure)
    return name


def _pareto_panel(
    axis: Any, candidates: pd.DataFrame, front: list[int], best: int | None, slo: float | None
) -> None:
    finite = candidates[np.isfinite(candidates["objective"].astype(float))]
    feasible, infeasible = finite[finite["feasible"]], finite[~finite["feasible"]]
    axis.scatter(
        infeasible["pareto_value"],
        infeasible["objective"],
        s=14,
        facecolors="none",
        edgecolors="tab:gray",
        label="infeasible candidate",
    )
    axis.scatter(
        feasible["pareto_value"], feasible["objective"], s=16, color="tab:blue", label="feasible candidate"
    )
    line = candidates.loc[front]
    axis.plot(
        line["pareto_value"],
        line["objective"],
        color="tab:orange",
        marker="o",
        markersize=4,
        linewidth=1.4,
        label="Pareto front",
    )
    if best is not None:
        row = candidates.loc[best]
        axis.scatter(
            [row["pareto_value"]],
            [row["objective"]],
            marker="*",
            s=220,
            color="tab:red",
            zorder=5,
            label=f"best feasible (#{best})",
        )
    if slo is not None:
        axis.axvline(slo, color="tab:red", linestyle="--", linewidth=1, label=f"SLO {slo:g} s")
    axis.set_xscale("log")
    axis.grid(True, which="both", alpha=0.3)


def pareto_plot(
    candidates: pd.DataFrame,
    front: list[int],
    best: int | None,
    kind: str,
    axis_label: str,
    slo: float | None,
    out_dir: Path,
) -> str:
    """Every candidate (left) and, right, a close-up of the front up to 3x the SLO (or 3x the best's p99)."""
    figure, (whole, close) = plt.subplots(1, 2, figsize=(12, 4.8))
    for axis in (whole, close):
        _pareto_panel(axis, candidates, front, best, slo)
        axis.set_xlabel(f"{axis_label} (s, log; mean over seeds)")
    whole.set_ylabel(f"{kind} ({OBJECTIVE_UNITS[kind]}, mean over seeds)")
    whole.set_title(f"All {len(candidates)} candidates", fontsize=10)
    reach = 3 * (
        slo
        if slo is not None
        else float(candidates.loc[best, "pareto_value"])
        if best is not None
        else float(candidates["pareto_value"].median())
    )
    near = candidates[
        (candidates["pareto_value"] <= reach) & np.isfinite(candidates["objective"].astype(float))
    ]
    if not near.empty:
        low, high = float(near["pareto_value"].min()), reach
        bottom, top = float(near["objective"].min()), float(near["objective"].max())
        pad = 0.05 * (top - bottom) or 0.05 * abs(top) or 1.0
        close.set_xlim(low / 1.15, high)
        close.set_ylim(bottom - pad, top + pad)
    close.set_title(f"Close-up: {axis_label} up to {reach:.3g} s", fontsize=10)
    close.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    figure.suptitle(f"Plan: {kind} against tail latency")
    return _save(figure, out_dir, "pareto.png")


def heatmap(candidates: pd.DataFrame, counts: list[str], kind: str, out_dir: Path) -> str | None:
    """Best objective over the other choices at each pair of the first two node-count dimensions."""
    if len(counts) < 2:
        return None
    x_path, y_path = counts[0], counts[1]
    xs = sorted(candidates[x_path].unique())
    ys = sorted(candidates[y_path].unique())
    best = np.full((len(ys), len(xs)), np.nan)
    feasible = np.zeros_like(best, dtype=bool)
    tried = np.zeros_like(best, dtype=bool)
    for _, row in candidates.iterrows():
        i, j = ys.index(row[y_path]), xs.index(row[x_path])
        tried[i, j] = True
        value = float(row["objective"])
        if not math.isfinite(value):
            continue
        if row["feasible"]:
            best[i, j] = value if not feasible[i, j] else min(best[i, j], value)
            feasible[i, j] = True
        elif not feasible[i, j]:
            best[i, j] = value if np.isnan(best[i, j]) else min(best[i, j], value)
    figure, axis = plt.subplots(figsize=(max(5.0, 0.55 * len(xs) + 2), max(3.5, 0.45 * len(ys) + 1.5)))
    shown = np.where(feasible, best, np.nan)
    image = axis.imshow(shown, origin="lower", aspect="auto", cmap="viridis")
    low, high = (float(np.nanmin(shown)), float(np.nanmax(shown))) if feasible.any() else (0.0, 0.0)
    for i in range(len(ys)):
        for j in range(len(xs)):
            if tried[i, j] and not feasible[i, j]:
                axis.add_patch(
                    plt.Rectangle(
                        (j - 0.5, i - 0.5),
                        1,
                        1,
                        fill=True,
                        facecolor="0.85",
                        hatch="xx",
                        edgecolor="0.5",
                        linewidth=0,
                    )
                )
            elif feasible[i, j]:
                # viridis turns yellow towards the colour bar's top: dark text there
                light = high > low and (best[i, j] - low) / (high - low) > 0.6
                axis.text(
                    j,
                    i,
                    significant(best[i, j], 3),
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="black" if light else "white",
                )
    axis.set_xticks(range(len(xs)), [str(x) for x in xs])
    axis.set_yticks(range(len(ys)), [str(y) for y in ys])
    axis.set_xlabel(f"{x_path} (nodes)")
    axis.set_ylabel(f"{y_path} (nodes)")
    axis.set_title(
        f"Best feasible {kind} ({OBJECTIVE_UNITS[kind]}); hatched: infeasible; blank: not tried", fontsize=9
    )
    figure.colorbar(image, ax=axis, label=f"best feasible {kind} ({OBJECTIVE_UNITS[kind]})")
    return _save(figure, out_dir, "heatmap.png")


def count_dimensions(dimensions: list[str]) -> list[str]:
    """The searched node counts (`cluster.<pool>.count`), in the plan's order."""
    return [
        path
        for path in dimensions
        if path.startswith("cluster.") and path.endswith(".count") and path != POLICY_DIMENSION
    ]
