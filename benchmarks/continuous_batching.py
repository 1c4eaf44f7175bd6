"""How fast is continuous batching in hybridsim? Simulated requests per second, against one event per
iteration.

100,000 conversation-trace-shaped requests on a pool of continuously batching GPUs (Llama-2-70B TP8
replicas, `max_num_seqs` 64, 16,384 batched tokens), routed by join-shortest-queue, through
`hybridsim.simulator.engine.simulate` end to end. Two loads:

* `--arrivals trace` (default): the shipped `scenarios/azure-conv-a100.yaml` at the replica count that
  meets its SLOs: the Azure 2023 conversation trace itself (its arrivals, prompts and answers), replayed
  hour after hour until the requests are reached, on 5 replicas (~5.5 req/s; mean batch ~15);
* `--arrivals poisson`: a heavier load, the trace's (prompt, answer) pairs drawn with replacement, Poisson
  arrivals at `--rate` 30 req/s on 16 replicas (mean batch ~22).

Beside it, in the same process, on the same requests, two references:

* `PerIterationPool`, a stand-in for an iteration-level simulator (Vidur, splitwise-sim): the same
  scheduler, but one SimPy event per pass (`SimPyTimeline`, each decode iteration its own event), and
  every pass priced as it happens by the serving cost model itself (one call of
  `ServingCostModel.prefill` / `.decode` on its scalar path, capped through `energy.iteration_energy`), as
  such a simulator asks its performance model once per batch. It does not loop over the batch per
  iteration (its per-request bookkeeping is this engine's, O(1) per iteration), so if anything it is
  faster than those simulators. It reads the model where the engine reads its grid, so single requests
  part ways (a pass a hair longer moves a boundary across an arrival); the means are compared.
* `PerIterationGridPool`: one SimPy event per iteration, priced from the engine's grid: what the events
  alone cost; it must answer every request exactly as the engine does (counted).

Times are CPU seconds of this process (the fastest of `--repeat` runs), which is what a run costs on a
machine of its own; wall seconds are printed too (on a shared machine they count other processes' turns).
The issue's targets: >= 20,000 simulated requests per second at 100k requests, >= 20x the per-iteration
version, and a million requests under 2 GB of peak memory (the process's maximum resident set).

Measured on the 2-core development machine, 2026-12-02 (a slower session for this VM than the one
before, which measured 25,000-26,400 req/s on 6 replicas: a plain Python loop ran 1.7 s per 10M
iterations), at the 5 replicas the shipped scenario needs (5, not 6 as first reported from a sweep that
skipped 5):
* trace, `--repeat 2`: 16,400 req/s CPU (20,970 in an engine-only `--skip-reference --repeat 3` run at the
  quietest moment; 13,300 with a test suite sharing the machine), 2.71 passes per request at a mean batch
  of 12.0; the per-iteration reference 1,530 req/s (14.4 decode iterations per request): 10.7x (9.9x
  shared); the grid-priced per-iteration engine 5,110 req/s: 3.2x. Means agree with the model-priced
  reference within 0.03% (latency), 0.1% (TTFT), 0.014% (energy); 0 requests answered differently by the
  grid-priced one.
* At 20k requests (helpers' tests sharing the machine) the ratio grows as the load per replica falls: 12x
  on 6 replicas (mean batch 9.7, 18.7 iterations per request), 25x on 12 (batch 4.6, 43), 60x on 24
  (batch 2.3, 92).
* `--requests 1000000 --skip-reference` (trace): 15,900 req/s CPU, 937 MB peak.
The 20x is not reached at the SLO point. What bounds it: the engine spends ~38 us per request on a fast
day (an arrival, ~1 prefill, ~1.8 runs of decode iterations, ~0.9 cuts by a newcomer), ~24 us of it the
per-request work the reference pays too; the reference ~27 us per decode iteration; and a batch of 12
leaves only ~14 decode iterations per request on this trace. A mypyc build of the eight hot modules
(`engine`, `continuous`, `continuous_node`, `node_timeline`, `serving_records`, `records`,
`iteration_pricing`, `join_shortest_queue`; an experiment, not shipped; 30k requests on a loaded machine)
ran the engine 1.84x faster (26,200 against 14,200 req/s) and, with the reference built the same way, gave
19.7x on 6 replicas: a compiled core reaches about the target there, at the cost of a C compiler in
`pip install`.

The serving table: the built-in `splitwise-a100/llama2-70b-tp8` when the profile exists, else a synthetic
one (named in the output).

    python benchmarks/continuous_batching.py --repeat 2                  # 100k requests, both references
    python benchmarks/continuous_batching.py --arrivals poisson --repeat 2
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
from hybridsim.simulator.cluster.node_timeline import SimPyTimeline
from hybridsim.simulator.energy import iteration_energy
from hybridsim.simulator.engine import PoolConfig, RunResult, simulate
from hybridsim.simulator.policies import make_policy
from hybridsim.simulator.predictors import make_predictor
from hybridsim.simulator.profiles.iteration_pricing import DecodeRun, IterationPricer, ServedAlone
from hybridsim.simulator.profiles.registry import load_profile
from hybridsim.simulator.profiles.serving_costs import build_serving_cost_model

from hybridsim.core.errors import HybridsimError

TRACE = Path(__file__).resolve().parent.parent / "scenarios" / "traces" / "azure-conv-2023.csv"
PROFILE = "splitwise-a100/llama2-70b-tp8"


class OnePass:
    """One decode iteration priced on its own (what `DecodeRun` asks, for a run of one step)."""

    __slots__ = ("steps", "_time", "_energy", "_cpu")

    def __init__(self, time: float, energy: float, cpu: float) -> None:
        self.steps, self._time, self._energy, self._cpu = 1, time, energy, cpu

    def end(self, j: int) -> float:
        return self._time

    def energy(self, j: int) -> float:
        return self._energy

    def cpu(self, j: int) -> float:
        return self._cpu

    def totals(self, j: int) -> tuple[float, float, float]:
        return self._time, self._energy, self._cpu

    def longest_step(self, first: int, last: int) -> float:
        return 0.0


class PassByPass(IterationPricer):
    """Every pass priced by the serving cost model itself, one call per pass (its scalar path), capped
    through `energy.iteration_energy`: as an iteration-level simulator asks its performance model."""

    def prefill(self, batch: int, prompt_tokens: int) -> tuple[float, float, float]:
        time, cpu, gpu = iteration_energy(self.model.prefill(float(batch), float(prompt_tokens)), self.cap)
        return float(time), float(cpu + gpu), float(cpu)

    def decode_run(self, batch: int, context_tokens: int, steps: int) -> DecodeRun:
        if steps != 1:
            return super().decode_run(batch, context_tokens, steps)
        time, cpu, gpu = iteration_energy(self.model.decode(float(batch), float(context_tokens)), self.cap)
        return OnePass(float(time), float(cpu + gpu), float(cpu))


class PerIterationGridPool(ContinuousPool):
    """The lighter reference: one SimPy event per pass (each decode iteration one), priced from this engine's
    grid."""

    def __init__(self, setup: PoolSetup, first_index: int, cluster: Any) -> None:
        super().__init__(setup, first_index, cluster)
        self.timeline = SimPyTimeline(cluster.env)

    def _run_length(self, steps: int) -> int:
        return 1


class PerIterationPool(PerIterationGridPool):
    """The reference: the same scheduler, one SimPy event per pass (each decode iteration one), every pass
    priced by the serving cost model as it happens (no grid, no runs)."""

    def __init__(self, setup: PoolSetup, first_index: int, cluster: Any) -> None:
        super().__init__(setup, first_index, cluster)
        self.pricer = PassByPass(self.serving.model, self.serving.cap)


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


def replayed(count: int) -> RequestStream:
    """The trace itself, hour after hour, until `count` requests: its own arrivals, prompts and answers."""
    trace = read_trace(TRACE)
    size = trace.arrival_s.size
    copies = -(-count // size)
    hour = float(trace.arrival_s[-1]) + float(np.diff(trace.arrival_s).mean())
    arrival = (trace.arrival_s[None, :] + hour * np.arange(copies)[:, None]).ravel()[:count]
    m = np.tile(trace.input_tokens, copies)[:count].astype(np.int64)  # type: ignore[arg-type]
    n = np.tile(trace.output_tokens, copies)[:count].astype(np.int64)  # type: ignore[arg-type]
    return RequestStream(arrival, m, n, np.full(count, 1024, np.int64))


def run(
    stream: RequestStream, model: Any, nodes: int, engine: type[ContinuousPool] = ContinuousPool
) -> tuple[RunResult, float, float]:
    """One run of `engine` on the pool: (result, CPU seconds, wall seconds). CPU time is what the run costs
    on a machine of its own; on a shared machine the wall time also counts the other processes' turns."""
    limits = ServingLimits(max_num_seqs=64, max_num_batched_tokens=16384)
    setup = PoolSetup("gpu", nodes, 400.0, serving=ContinuousSetup(model, limits))
    config = PoolConfig(setup, ServedAlone(model), profile="gpu")
    original = cluster_module.ContinuousPool
    cluster_module.ContinuousPool = engine  # type: ignore[misc]
    try:
        start, wall = time.process_time(), time.perf_counter()
        result = simulate(
            [config], stream, make_policy("join_shortest_queue", {}), make_predictor("max_tokens")
        )
        return result, time.process_time() - start, time.perf_counter() - wall
    finally:
        cluster_module.ContinuousPool = original  # type: ignore[misc]


def best_of(
    repeat: int, stream: RequestStream, model: Any, nodes: int, engine: type
) -> tuple[RunResult, float, float]:
    """The fastest of `repeat` runs, CPU and wall time (the least disturbed on a shared machine)."""
    runs = [run(stream, model, nodes, engine) for _ in range(repeat)]
    return runs[0][0], min(cpu for _, cpu, _ in runs), min(wall for _, _, wall in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument(
        "--arrivals",
        choices=("trace", "poisson"),
        default="trace",
        help="trace: the conversation trace replayed hour after hour (the shipped azure-conv load); "
        "poisson: its lengths drawn at random, Poisson arrivals at --rate",
    )
    parser.add_argument("--rate", type=float, default=30.0, help="poisson: arrivals per second (all nodes)")
    parser.add_argument(
        "--nodes",
        type=int,
        help="replicas (default: 5 for trace, the fewest that meet its SLOs; 16 for poisson)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each engine; the fastest counts")
    parser.add_argument("--skip-reference", action="store_true", help="only the batched-run engine")
    args = parser.parse_args()
    model, name = serving_model()
    if args.arrivals == "trace":
        stream, nodes = replayed(args.requests), args.nodes or 5
    else:
        stream, nodes = requests(args.requests, args.rate, args.seed), args.nodes or 16
    args.nodes = nodes
    result, seconds, wall = best_of(args.repeat, stream, model, args.nodes, ContinuousPool)
    passes = result.passes["gpu"]
    report: dict[str, Any] = {
        "serving_table": name,
        "requests": args.requests,
        "arrivals": args.arrivals,
        "nodes": args.nodes,
        "offered_rps": round(args.requests / float(stream.arrival_s[-1]), 2),
        "cpu_seconds": round(seconds, 2),
        "simulated_requests_per_s": round(args.requests / seconds),
        "wall_seconds": round(wall, 2),
        "simulated_requests_per_wall_s": round(args.requests / wall),
        "passes_per_request": round(passes["batch"].size / args.requests, 2),
        "mean_batch": round(float(np.average(passes["batch"], weights=passes["duration_s"])), 1),
        "mean_latency_s": round(float(result.table["latency_s"].mean()), 2),
        "preemptions": int(result.preemptions["gpu"]),
    }
    if not args.skip_reference:
        reference, ref_seconds, ref_wall = best_of(args.repeat, stream, model, args.nodes, PerIterationPool)
        grid, grid_seconds, _ = best_of(args.repeat, stream, model, args.nodes, PerIterationGridPool)
        differ = np.zeros(args.requests, dtype=bool)
        for column in ("latency_s", "ttft_s", "energy_j", "tbt_max_s"):
            differ |= ~np.isclose(result.table[column], grid.table[column], rtol=1e-9, atol=1e-9)

        def gap(column: str) -> float:
            """Difference of a per-request column's mean, model-priced reference vs engine (%)."""
            return round(100 * (reference.table[column].mean() / result.table[column].mean() - 1), 4)

        report.update(
            {
                "per_iteration_cpu_seconds": round(ref_seconds, 2),
                "per_iteration_requests_per_s": round(args.requests / ref_seconds),
                "speedup": round(ref_seconds / seconds, 1),
                "speedup_wall": round(ref_wall / wall, 1),
                "iterations_per_request": round(
                    float(reference.passes["gpu"]["prefill"].__invert__().sum()) / args.requests, 1
                ),
                # the engine reads pass costs off a grid, the reference asks the model: each pass agrees
                # within the grid's interpolation error (`tests/profiles/test_iteration_pricing.py`), but a
                # pass a hair longer or shorter can move a boundary across an arrival, and from there the
                # two schedules part request by request; their means agree
                "mean_latency_difference_pct": gap("latency_s"),
                "mean_ttft_difference_pct": gap("ttft_s"),
                "mean_energy_difference_pct": gap("energy_j"),
                "per_iteration_grid_cpu_seconds": round(grid_seconds, 2),
                "per_iteration_grid_requests_per_s": round(args.requests / grid_seconds),
                "speedup_vs_grid_reference": round(grid_seconds / seconds, 1),
                # runs of iterations and single iterations add the same costs in a different order; where
                # that rounding moves a boundary across an arrival, the schedules part (a tie, not a bug)
                "requests_answered_differently_vs_grid": int(differ.sum()),
            }
        )
    report["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
