"""Beside every policy of a simulation, how far its energy lies above what any router could have reached.

All policies of one sweep point see the same requests at the same times on the same nodes, so one offline
bound serves them all (`analysis/offline_bound.py`): computed once per point, in the parent process after
the runs, from the point's requests priced on every pool. Each run's entry in `summary.json` gains
`offline_bound` (the LP's figures) and `above_offline_bound_pct` (100 x (E - bound) / bound); for a pool kind
the bound does not cover (continuous batching) `offline_bound` says so and the percentage is null.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from ..analysis.offline_bound import BoundResult, bound_pools, offline_energy_bound, unsupported
from ..cluster import price_requests
from .simulation_schema import Scenario


def point_bound(scenario: Scenario, base_dir: Path | None) -> BoundResult | str:
    """The offline bound for one (sweep point's) scenario: its requests, its pools, its arrival window; or
    why there is none (a pool kind the bound does not cover)."""
    from .simulation import _pool_configs, build_stream  # the runner imports this module

    configs = _pool_configs(scenario)
    reason = unsupported([config.setup for config in configs])
    if reason is not None:
        return reason
    stream, _ = build_stream(scenario, base_dir)
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
    with warnings.catch_warnings():
        # the runs have already reported whatever pricing these requests warns about (once each)
        warnings.simplefilter("ignore")
        bounds = [point_bound(point, base_dir) for _, point in points]
    for run in runs:
        bound = bounds[run["point"]]
        if isinstance(bound, str):
            run["offline_bound"] = {"unavailable": bound}
            run["above_offline_bound_pct"] = None
            continue
        run["offline_bound"] = bound.as_dict()
        run["above_offline_bound_pct"] = bound.above_pct(run["energy"]["total_j"])
