"""`kind: plan`: which mix of nodes, which router and which settings serve my load within my SLOs for the
least energy (or money, or carbon)?

    kind: plan
    base: default.yaml                       # a kind: simulation scenario (file or inline mapping)
    set: {arrival.requests: 10000}           # fixed changes to the base, by YAML path
    space:                                   # what to search, by YAML path: lists or integer ranges
      cluster.m1.count: {from: 0, to: 96, step: 8}
      cluster.a100.count: {from: 2, to: 8}
    policies:                                # routers to choose from; `grid` lists parameter values
      - {name: all-a100, policy: all_on, params: {system: a100}}
      - {name: output, policy: output_threshold, params: {below: m1, above: a100},
         grid: {threshold: [32, 64]}}
    seeds: 3                                 # every candidate runs with 3 seeds (a list names them)
    objective: {kind: energy}                # or {kind: cost, price_per_kwh: 0.15, node_hour: {a100: 1.2}}
                                             # or {kind: carbon, carbon: {g_per_kwh: 400}}
                                             # or {kind: carbon, carbon: {intensity_csv: ...}}
    constraints: [{metric: latency_s.p99, max: 60}]   # any figure of a run's summary, by dotted path
    no_saturation: true                      # a pool falling behind its load makes a candidate infeasible
    search: {method: auto, trials: 200, batch: 16, seed: 0}   # grid, optuna (TPE) or auto
    execution: {backend: local, workers: 2}  # or ray (--backend ray --address host:port); not a result

Each candidate becomes a complete simulation scenario with one policy and runs through the simulation
scenario's own machinery (`run_one`), once per seed. The summary names the best feasible candidate with
its 95% confidence interval over seeds; when no candidate is feasible, the plan fails and says which
constraints the nearest candidate broke.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

from tqdm import tqdm

from hybridsim.core.errors import HybridsimError
from hybridsim.core.text import significant

from ..scenario.simulation import check, offline_bound
from .backends import make_backend
from .objective import OBJECTIVE_UNITS, check_metrics, describe_failure, flatten
from .report import (
    candidate_table,
    count_dimensions,
    heatmap,
    pareto_front,
    pareto_plot,
    runs_table,
    write_tables,
)
from .schema import Scenario
from .search import Evaluated, _Evaluator, grid_search, optuna_search, resolve_method
from .space import Space, build_space, key, read_base

__all__ = ["Scenario", "run"]


def _seeds(plan: Scenario, base: dict[str, Any]) -> list[int]:
    if isinstance(plan.seeds, list):
        return list(plan.seeds)
    first = plan.seed if plan.seed is not None else int(base.get("seed", 0))
    return list(range(first, first + plan.seeds))


def _prepare(plan: Scenario, plan_path: Path | None, source: str) -> tuple[Space, list[int], Path | None]:
    """The space, the seeds and the base's folder; every value of every dimension checked once."""
    try:
        base, base_dir = read_base(plan, plan_path)
    except HybridsimError as error:
        raise HybridsimError(f"{source}: {error}") from None
    if plan.objective.carbon is not None:
        base["carbon"] = plan.objective.carbon.model_dump(mode="json", exclude_none=True)
        if plan.objective.carbon.intensity_csv is not None and plan_path is not None:
            csv = Path(plan.objective.carbon.intensity_csv)  # relative to the plan, not to its base
            absolute = csv if csv.is_absolute() else Path(plan_path).resolve().parent / csv
            base["carbon"]["intensity_csv"] = str(absolute)
    space = build_space(plan, base, source)
    for pool in plan.objective.node_hour:
        if pool not in space.base["cluster"]:
            raise HybridsimError(f"{source}: objective.node_hour.{pool}: no pool named {pool!r} in the base")
    seeds = _seeds(plan, space.base)
    first = {path: values[0] for path, values in space.choice_lists().items()}
    probes = [first] + [
        {**first, path: value} for path, values in space.choice_lists().items() for value in values[1:]
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the runs report their warnings once
        for choice in probes:
            try:
                check(space.scenario(choice, seeds[0]), base_dir)
            except HybridsimError as error:
                if "has no nodes" in str(error):
                    continue  # a pool left empty by a candidate: that candidate fails, not the plan
                raise HybridsimError(f"{source}: candidate {key(choice)}: {error}") from None
    return space, seeds, base_dir


def _best(evaluated: list[Evaluated], space: Space) -> int | None:
    """The feasible candidate of least objective; ties go to the first in the space's own order (so a
    search and the exhaustive grid name the same one)."""
    feasible = [k for k, item in enumerate(evaluated) if item.row["feasible"]]
    if not feasible:
        return None
    return min(feasible, key=lambda k: (evaluated[k].row["objective"], space.index(evaluated[k].choice)))


def _nearest(evaluated: list[Evaluated]) -> int:
    """The infeasible candidate closest to feasible: least total violation, then least objective."""
    return min(
        range(len(evaluated)),
        key=lambda k: (evaluated[k].row["violation"], evaluated[k].row.get("objective") or 0.0, k),
    )


def run(scenario: Scenario, out_dir: Path, scenario_path: Path | None = None) -> dict[str, Any]:
    """Search the plan's space, write the tables and plots into `out_dir`, return the summary."""
    source = str(scenario_path) if scenario_path else "plan"
    space, seeds, base_dir = _prepare(scenario, scenario_path, source)
    method = resolve_method(scenario, space)
    if method == "grid" and space.size > scenario.search.max_grid:
        raise HybridsimError(
            f"{source}: search.method: grid over {space.size} candidates exceeds search.max_grid "
            f"{scenario.search.max_grid}; use method optuna or raise max_grid"
        )
    execution = scenario.execution
    planned = (space.size if method == "grid" else min(space.size, scenario.search.trials)) * len(seeds)
    backend = make_backend(execution.backend, execution.address, execution.workers)

    def first_check(item: Evaluated) -> None:
        if "error" not in item.runs[0]:
            try:
                check_metrics(flatten(item.runs[0]), scenario.constraints, scenario.pareto_metric)
            except HybridsimError as error:
                raise HybridsimError(f"{source}: {error}") from None

    try:
        with tqdm(
            total=planned,
            unit="run",
            desc="planning",
            leave=False,
            disable=planned < 2 or not sys.stderr.isatty(),
        ) as bar:
            evaluator = _Evaluator(scenario, space, seeds, base_dir, backend, bar.update)
            search = grid_search if method == "grid" else optuna_search
            evaluated = search(evaluator, first_check)
    finally:
        backend.close()
    for message in dict.fromkeys(evaluator.warnings):
        warnings.warn(message, UserWarning, stacklevel=2)

    best = _best(evaluated, space)
    if best is None:
        nearest = _nearest(evaluated)
        item = evaluated[nearest]
        raise HybridsimError(
            f"{source}: no feasible candidate among {len(evaluated)}; the nearest, {key(item.choice)}, "
            f"fails {describe_failure(item.row, item.runs, scenario.constraints)}"
        )
    points = [
        (float(item.row.get("objective", float("inf"))), float(item.row.get("pareto_value", float("inf"))))
        for item in evaluated
    ]
    front = pareto_front(points)
    candidates = candidate_table(evaluated, front)
    files = write_tables(candidates, runs_table(evaluated, seeds), out_dir)
    slo = next((c.max for c in scenario.constraints if c.metric == scenario.pareto_metric), None)
    kind = scenario.objective.kind
    plots = [pareto_plot(candidates, front, best, kind, scenario.pareto_metric, slo, out_dir)]
    plots += [
        name
        for name in [heatmap(candidates, count_dimensions(list(space.dimensions)), kind, out_dir)]
        if name
    ]
    winner = evaluated[best]
    ties = [
        key(item.choice)
        for item in evaluated
        if item.row["feasible"] and item.row["objective"] == winner.row["objective"] and item is not winner
    ]
    summary: dict[str, Any] = {
        "kind": "plan",
        "scenario": scenario.name or (Path(scenario_path).stem if scenario_path else None),
        "description": scenario.description,
        "objective": {
            **scenario.objective.model_dump(mode="json", exclude_none=True),
            "unit": OBJECTIVE_UNITS[kind],
        },
        "constraints": [c.label for c in scenario.constraints]
        + (["no pool saturated"] if scenario.no_saturation else []),
        "seeds": seeds,
        "search": {
            "method": method,
            "space_size": space.size,
            "evaluated": len(evaluated),
            "runs": len(evaluated) * len(seeds),
            **scenario.search.model_dump(),
        },
        "dimensions": space.choice_lists(),
        "feasible": int(candidates["feasible"].sum()),
        "best": {
            "candidate": best,
            "choice": winner.choice,
            **winner.row,
            "runs": [{"seed": s, **_brief(run)} for s, run in zip(seeds, winner.runs, strict=True)],
        },
        "tied_with_best": ties,
        "pareto_front": [
            {
                "candidate": k,
                "choice": evaluated[k].choice,
                "objective": points[k][0],
                scenario.pareto_metric: points[k][1],
                "feasible": evaluated[k].row["feasible"],
            }
            for k in front
        ],
        "files": files,
        "plots": plots,
    }
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore"
        )  # the bound rebuilds the pools' models: their warnings are out already
        summary["best"]["offline_bound"] = _bound(space, winner, seeds, base_dir)
    summary["headline"] = _headline(summary, scenario.pareto_metric)
    return summary


def _bound(space: Space, winner: Evaluated, seeds: list[int], base_dir: Path | None) -> dict[str, Any]:
    """How far the best plan's energy lies above the offline optimum on its own nodes and requests (the
    least energy any router could spend there: `analysis/offline_bound.py`), per seed and on average."""
    per_seed = []
    for seed, run in zip(seeds, winner.runs, strict=True):
        bound = offline_bound(space.scenario(winner.choice, seed), base_dir)
        if isinstance(bound, str):  # a pool kind the bound does not cover (continuous batching)
            return {"above_pct_mean": None, "unavailable": bound, "per_seed": []}
        per_seed.append(
            {
                "seed": seed,
                "bound_kwh": bound.energy_j / 3.6e6,
                "above_pct": bound.above_pct(run["energy"]["total_j"]),
            }
        )
    above = [entry["above_pct"] for entry in per_seed if entry["above_pct"] is not None]
    return {"above_pct_mean": sum(above) / len(above) if above else None, "per_seed": per_seed}


def _brief(run: dict[str, Any]) -> dict[str, Any]:
    flat = flatten(run)
    keep = ("energy.total_kwh", "latency_s.p99", "latency_s.mean", "slo.attainment", "carbon.total_kg")
    return {**{path: flat[path] for path in keep if path in flat}, "saturated": run["saturated"]}


def _headline(summary: dict[str, Any], axis: str) -> str:
    best, unit = summary["best"], summary["objective"]["unit"]
    above = best["offline_bound"]["above_pct_mean"]
    bound = f", energy {above:.2f}% above the offline bound" if above is not None else ""
    interval = (
        f" (95% CI {significant(best['objective_ci_low'])}-{significant(best['objective_ci_high'])} over "
        f"{len(summary['seeds'])} seeds)"
        if best["objective_ci_low"] is not None
        else ""
    )
    ties = len(summary["tied_with_best"])
    return (
        f"{summary['scenario'] or 'plan'}: best {key(best['choice'])}: "
        f"{significant(best['objective'])} {unit}{interval}, {axis} {best['pareto_value']:.3g} s{bound}; "
        f"{summary['feasible']} of {summary['search']['evaluated']} "
        f"candidates feasible ({summary['search']['method']}, space {summary['search']['space_size']})"
        + ("; 1 other ties with it" if ties == 1 else f"; {ties} others tie with it" if ties else "")
    )
