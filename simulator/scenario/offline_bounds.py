"""Beside every policy of a simulation, how far its energy lies above what any router could have reached.

All policies of one sweep point see the same requests at the same times on the same nodes, so one offline
bound serves them all (`analysis/offline_bound.py`): computed once per point, in the parent process after
the runs, from the point's requests priced on every pool. Each run's entry in `summary.json` gains
`offline_bound` (the LP's figures) and `above_offline_bound_pct` (100 x (E - bound) / bound); for a pool kind
the bound does not cover (continuous batching) `offline_bound` says so and the percentage is null.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hybridsim.core.errors import HybridsimError

from ..analysis.offline_bound import BoundPool, BoundResult, offline_energy_bound
from ..arrivals import RequestStream
from ..cluster import PoolSetup, SystemCosts, price_requests
from ..engine import PoolConfig
from ..metrics.result import RunResult


def point_bound(configs: Sequence[PoolConfig], stream: RequestStream) -> BoundResult | str:
    """The offline bound for one sweep point: its requests on its pools over its arrival window; or why
    there is none (a pool kind the bound does not cover)."""
    reason = unsupported([config.setup for config in configs])
    if reason is not None:
        return reason
    costs = {
        config.setup.name: price_requests(
            config.cost_model, stream.input_tokens, stream.output_tokens, config.cap
        )
        for config in configs
    }
    return offline_energy_bound(
        stream.arrival_s, bound_pools([config.setup for config in configs], costs), stream.duration_s or 0.0
    )


def attach_offline_bounds(runs: list[dict[str, Any]], bounds: Sequence[BoundResult | str]) -> None:
    """Add `offline_bound` and `above_offline_bound_pct` to each run (its `point` indexes `bounds`)."""
    for run in runs:
        bound = bounds[run["point"]]
        if isinstance(bound, str):
            run["offline_bound"] = {"unavailable": bound}
            run["above_offline_bound_pct"] = None
            continue
        run["offline_bound"] = bound.as_dict()
        run["above_offline_bound_pct"] = bound.above_pct(run["energy"]["total_j"])


def unsupported(setups: Sequence[PoolSetup]) -> str | None:
    """Why the bound cannot be computed for these pools (None: it can).

    A continuously batching pool (`serving: continuous`) prices a request by the iterations it shares
    with others, not by its cost alone; the relaxations above do not cover it, so no bound is claimed.
    """
    for setup in setups:
        if getattr(setup, "serving", None) is not None:
            return (
                f"pool {setup.name} batches continuously; the bound covers one-at-a-time and padded batches"
            )
    return None


def bound_pools(setups: Sequence[PoolSetup], costs: Mapping[str, SystemCosts]) -> list[BoundPool]:
    """The pools of a run as the bound needs them: the operator's set-up and every request priced there."""
    reason = unsupported(setups)
    if reason is not None:
        raise HybridsimError(f"offline bound: {reason}")
    return [
        BoundPool(
            setup.name,
            setup.count,
            setup.idle_power_w,
            costs[setup.name].energy_j,
            costs[setup.name].runtime_s,
            setup.batch.max_batch,
            setup.batch.runtime_growth,
            setup.batch.energy_growth,
        )
        for setup in setups
    ]


def run_bound(
    result: RunResult, setups: Sequence[PoolSetup], min_horizon_s: float = 0.0, **options: Any
) -> BoundResult:
    """The offline bound for a finished run's requests on its pools (`min_horizon_s`:
    the arrival window's end).
    """
    return offline_energy_bound(
        result.table["arrival_s"], bound_pools(setups, result.costs), min_horizon_s, **options
    )
