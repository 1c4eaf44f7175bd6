"""What a streaming user and the operator of batching GPUs read off a run, beside the energy bill.

Users of a batching engine feel three numbers: the time to the first token (TTFT), the time between
tokens (TBT, here the mean gap of each request's answer), and the end-to-end latency. The scenario's `slo`
block sets a target for any of them and the share of requests that must meet each (`attainment`); the
summary says which were met. A request-level node hands back its answer whole (TTFT = latency, no TBT).

Completion throughput is reported over the arrival window (requests finished between the first and the
last arrival, per second of that window) and the drain after it apart, since a run that keeps up reads
its offered load in the first and a backlog shows in the second; `throughput_rps` over the whole makespan
mixes them.

For each batching pool, from its pass log (`cluster/serving_records.py`): the running batch size and the
KV-cache utilisation as time-weighted distributions over the decode iterations, preemptions, output
tokens per second, energy per output token, the prefill and decode shares of the active energy, and the
pool's power over time (active energy of the passes that began in each of `POWER_BINS` equal bins, plus
idle power of the nodes not busy in it).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .result import RunResult

POWER_BINS = 60


def _weighted(values: np.ndarray, weights: np.ndarray) -> dict[str, float | None]:
    """Time-weighted mean, median, p90 and maximum."""
    if not values.size or weights.sum() <= 0:
        return {"mean": None, "p50": None, "p90": None, "max": None}
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order]) / weights.sum()
    ranked = values[order]

    def at(share: float) -> float:
        return float(ranked[min(int(np.searchsorted(cumulative, share)), ranked.size - 1)])

    return {
        "mean": float(np.average(values, weights=weights)),
        "p50": at(0.5),
        "p90": at(0.9),
        "max": float(values.max()),
    }


def _quantiles(values: np.ndarray) -> dict[str, float | None]:
    if not values.size:
        return {"mean": None, "p50": None, "p90": None, "p99": None}
    points = np.percentile(values, [50, 90, 99])
    return {
        "mean": float(values.mean()),
        "p50": float(points[0]),
        "p90": float(points[1]),
        "p99": float(points[2]),
    }


def token_latency(result: RunResult) -> dict[str, Any]:
    """TTFT and mean TBT over the measured requests (TBT over requests with more than one token)."""
    table = result.table
    measured = ~table["in_warmup"]
    streamed = measured & (table["output_tokens"] > 1)
    return {
        "ttft_s": _quantiles(table["ttft_s"][measured]),
        "tbt_mean_s": _quantiles(table["tbt_mean_s"][streamed]),
    }


def slo_report(result: RunResult, targets: dict[str, float], attainment: float) -> dict[str, Any]:
    """Share of measured requests within each target, and whether that share reaches `attainment`."""
    table = result.table
    measured = ~table["in_warmup"]
    columns = {"ttft_s": "ttft_s", "tbt_s": "tbt_mean_s", "latency_s": "latency_s"}
    shares = {
        name: float(np.mean(table[columns[name]][measured] <= target)) for name, target in targets.items()
    }
    met = {name: share >= attainment for name, share in shares.items()}
    return {
        "targets": targets,
        "attainment_target": attainment,
        "attainment": shares,
        "met": met,
        "all_met": all(met.values()),
    }


def throughput(result: RunResult) -> dict[str, Any]:
    """Completions over the arrival window, and the drain after the last arrival."""
    table = result.table
    first, last = float(table["arrival_s"].min()), float(table["arrival_s"].max())
    finish = table["finish_s"]
    window = last - first
    inside = int(np.count_nonzero(finish <= last))
    return {
        "arrival_window_s": window,
        "arrival_window_rps": inside / window if window > 0 else None,
        "offered_rps": len(table) / window if window > 0 else None,
        "drain_s": max(float(finish.max()) - last, 0.0),
        "drain_requests": len(table) - inside,
    }


def pool_serving(result: RunResult, position: int, name: str, idle_power_w: float) -> dict[str, Any]:
    """The batching pool `name`'s token-level report (see the module docstring)."""
    passes = result.passes[name]
    table = result.table
    here = table["system_code"] == position
    nodes = int(np.count_nonzero(result.node_system == position))
    decode = ~passes["prefill"]
    output_tokens = float(table["output_tokens"][here].sum())
    active = float(table["energy_j"][here].sum())
    idle = float(result.idle_j[result.node_system == position].sum())
    prefill = float(np.nansum(table["prefill_energy_j"][here]))
    horizon = result.horizon_s
    edges = np.linspace(0.0, horizon, POWER_BINS + 1)
    middle = passes["start_s"] + 0.5 * passes["duration_s"]
    slot = np.clip(np.searchsorted(edges, middle, "right") - 1, 0, POWER_BINS - 1)
    width = horizon / POWER_BINS if horizon > 0 else 1.0
    busy = np.bincount(slot, weights=passes["duration_s"], minlength=POWER_BINS)
    energy = np.bincount(slot, weights=passes["energy_j"], minlength=POWER_BINS)
    watts = (energy + idle_power_w * np.maximum(nodes * width - busy, 0.0)) / width
    return {
        "kv_capacity_tokens": result.kv_capacity[name],
        "batch_size": _weighted(passes["batch"][decode].astype(np.float64), passes["duration_s"][decode]),
        "kv_utilisation": _weighted(
            passes["kv_tokens"][decode] / result.kv_capacity[name], passes["duration_s"][decode]
        ),
        "preemptions": result.preemptions[name],
        "output_tokens": output_tokens,
        "output_tokens_per_s": output_tokens / horizon if horizon > 0 else None,
        "energy_per_output_token_j": (active + idle) / output_tokens if output_tokens else None,
        "active_energy_per_output_token_j": active / output_tokens if output_tokens else None,
        "prefill_energy_share": prefill / active if active else None,
        "power_w": {"bin_s": width, "watts": [float(w) for w in watts]},
        "ttft_s": _quantiles(table["ttft_s"][here & ~table["in_warmup"]]),
        "tbt_max_s": _quantiles(
            table["tbt_max_s"][here & ~table["in_warmup"] & (table["output_tokens"] > 1)]
        ),
    }
