"""Beside every policy of a simulation, how far its energy lies above what any router could have reached.

All policies of one sweep point see the same requests at the same times on the same nodes, so one offline
bound serves them all (`analysis/offline_bound.py`): computed once per point, in the parent process after
the runs, from the point's requests priced on every pool. Each run's entry in `summary.json` gains
`offline_bound` (the LP's figures) and `above_offline_bound_pct` (100 x (E - bound) / bound).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..analysis.offline_bound import BoundResult, bound_pools, offline_energy_bound
from ..cluster import price_requests
from .simulation_schema import Scenario


def point_bound(scenario: Scenario, base_dir: Path | None) -> BoundResult:
    """The offline bound for one (sweep point's) scenario: its requests, its pools, its arrival window."""
    from .simulation import _pool_configs, build_stream  # the runner imports this module

    stream, _ = build_stream(scenario, base_dir)
    configs = _pool_configs(scenario)
    costs = {
        config.setup.name: price_requests(
            config.cost_model, stream.input_tokens, stream.output_tokens, config.cap
        )
        for config in configs
    }
    return offline_energy_bound(
        stream.arrival_s, bound_pools([config.setup for config in configs], costs), stream.duration_s or 0.0
    )


def attach_offline_bounds(
    runs: list[dict[str, Any]], points: list[tuple[Any, Scenario]], base_dir: Path | None
) -> None:
    """Add `offline_bound` and `above_offline_bound_pct` to each run (its `point` names its sweep point)."""
    bounds = [point_bound(point, base_dir) for _, point in points]
    for run in runs:
        bound = bounds[run["point"]]
        run["offline_bound"] = bound.as_dict()
        run["above_offline_bound_pct"] = bound.above_pct(run["energy"]["total_j"])
