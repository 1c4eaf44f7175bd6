"""How fast is continuous batching in hybridsim? Simulated requests per second, against one event per iteration.

100,000 conversation-trace-shaped requests (prompt and answer lengths drawn with replacement from the Azure
2023 conversation trace shipped in `scenarios/traces/`, Poisson arrivals) on a pool of continuously
batching GPUs, routed by join-shortest-queue, through `hybridsim.simulator.engine.simulate` end to end.

Beside it, in the same process, on the same requests, the same engine run with *one SimPy event per
decode iteration*: a `ContinuousPool` whose runs of iterations are one step long (`_run_length` -> 1),
which is how an iteration-level simulator (Vidur, splitwise-sim) advances. Both must give the same
answers (the benchmark counts requests whose latency, TTFT, TBT or energy differ). The issue's targets are
>= 20,000 simulated requests per second and >= 20x the per-iteration version, and a million requests under
2 GB of peak memory (the process's maximum resident set). Measured on the 2-core development machine
(shared): ~8,000 req/s at 30 req/s offered (1.7x the per-iteration reference, batch ~22) and ~6,000 req/s at
8 req/s (2.6x, batch ~5); 1M requests in 940 MB. The reference is this engine with its runs cut to one
iteration, so it already does O(1) work per iteration (no loop over the batch), which is why the ratio is
the events saved (about output tokens / batch size per request), not the 20x the issue asked for.

The serving table: the built-in `splitwise-a100/llama2-70b-tp8` when the profile exists, else a synthetic
one (named in the output).

    python benchmarks/continuous_batching.py                       # 100k requests, both engines
    python benchmarks/continuous_batching.py --requests 1000000 --skip-reference
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np
from hybridsim.simulator.arrivals import RequestStream, read_trace
from hybridsim.simulator.cluster import PoolSetup
from hybridsim.simulator.cluster import cluster as cluster_module
from hybridsim.simulator.cluster.continuous import ContinuousPool
from hybridsim.simulator.cluster.continuous_node import ContinuousSetup, ServingLimits
from hybridsim.simulator.engine import PoolConfig, RunResult, simulate
from hybridsim.simulator.policies import make_policy
from hybridsim.simulator.predictors import make_predictor
from hybridsim.simulator.profiles.iteration_pricing import ServedAlone
from hybridsim.simulator.profiles.registry import load_profile
from hybridsim.simulator.profiles.serving_costs import build_serving_cost_model

from hybridsim.core.errors import HybridsimError

TRACE = Path(__file__).resolve().parent.parent / "scenarios" / "traces" / "azure-conv-2023.csv"
PROFILE = "splitwise-a100/llama2-70b-tp8"


class PerIterationPool(ContinuousPool):
    """The reference: the same scheduler, advancing one decode iteration per SimPy event."""

    def _run_length(self, steps: int) -> int:
        return 1


def serving_model() -> tuple[Any, str]:
    """The serving table to run on, and its name."""
    try:
        profile = load_profile(PROFILE)
        return build_serving_cost_model(profile, "clamp"), PROFILE
    except HybridsimError:
        import sys

        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "profiles"))
        from serving_fakes import serving_profile  # synthetic tables, batch 1-16, made-up coefficients

        return build_serving_cost_model(
            serving_profile(), "clamp"
        ), "synthetic (tests/profiles/serving_fakes.py)"


def requests(count: int, rate: float, seed: int) -> RequestStream:
    """`count` requests with the conversation trace's (prompt, answer) pairs and Poisson arrivals."""
    trace = read_trace(TRACE)
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, trace.arrival_s.size, count)
    arrival = np.cumsum(rng.exponential(1.0 / rate, count))
    m = trace.input_tokens[pick].astype(np.int64)  # type: ignore[index]
    n = trace.output_tokens[pick].astype(np.int64)  # type: ignore[index]
    return RequestStream(arrival, m, n, np.full(count, 4096, np.int64))


def run(stream: RequestStream, model: Any, nodes: int, per_iteration: bool) -> tuple[RunResult, float]:
    limits = ServingLimits(max_num_seqs=64, max_num_batched_tokens=16384)
    setup = PoolSetup("gpu", nodes, 400.0, serving=ContinuousSetup(model, limits))
    config = PoolConfig(setup, ServedAlone(model), profile="gpu")
    original = cluster_module.ContinuousPool
    cluster_module.ContinuousPool = PerIterationPool if per_iteration else original  # type: ignore[misc]
    try:
        start = time.perf_counter()
        result = simulate(
            [config], stream, make_policy("join_shortest_queue", {}), make_predictor("max_tokens")
        )
        return result, time.perf_counter() - start
    finally:
        cluster_module.ContinuousPool = original  # type: ignore[misc]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=30.0, help="arrivals per second (all nodes together)")
    parser.add_argument("--nodes", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-reference", action="store_true", help="only the batched-run engine")
    args = parser.parse_args()
    raw, name = serving_model()
    model = raw
    stream = requests(args.requests, args.rate, args.seed)
    result, seconds = run(stream, model, args.nodes, per_iteration=False)
    passes = result.passes["gpu"]
    report: dict[str, Any] = {
        "serving_table": name,
        "requests": args.requests,
        "nodes": args.nodes,
        "offered_rps": args.rate,
        "seconds": round(seconds, 2),
        "simulated_requests_per_s": round(args.requests / seconds),
        "events_per_request": round(passes["batch"].size / args.requests, 2),
        "mean_batch": round(float(np.average(passes["batch"], weights=passes["duration_s"])), 1),
        "mean_latency_s": round(float(result.table["latency_s"].mean()), 2),
        "preemptions": int(result.preemptions["gpu"]),
    }
    if not args.skip_reference:
        reference, ref_seconds = run(stream, model, args.nodes, per_iteration=True)
        differ = np.zeros(args.requests, dtype=bool)
        for column in ("latency_s", "ttft_s", "energy_j", "tbt_max_s"):
            differ |= ~np.isclose(result.table[column], reference.table[column], rtol=1e-9, atol=1e-9)
        report.update(
            {
                "per_iteration_seconds": round(ref_seconds, 2),
                "per_iteration_requests_per_s": round(args.requests / ref_seconds),
                "speedup": round(ref_seconds / seconds, 1),
                # runs of iterations and single iterations add the same costs in a different order; where
                # that rounding moves a boundary across an arrival, the schedules part (a tie, not a bug)
                "requests_answered_differently": int(differ.sum()),
                "per_iteration_mean_latency_s": round(float(reference.table["latency_s"].mean()), 2),
                "energy_difference_pct": round(
                    100 * (reference.table["energy_j"].sum() / result.table["energy_j"].sum() - 1), 6
                ),
            }
        )
    report["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
