"""How long a full threshold sweep takes: every T in 1..4096 over the 51,941-request Alpaca workload.

    python benchmarks/threshold_sweep.py [--repeats 20]

Prints, per method, the time to price every request on both systems (once per scenario) and the time
of the sweep itself (sort, cumulative sums, searchsorted), as the median over the repeats.
"""

from __future__ import annotations

import argparse
import platform
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from hybridsim.simulator.analysis.threshold import (
    paper_costs,
    paper_lengths,
    per_bin_table,
    per_request_costs,
    routing_key,
    sweep,
)
from hybridsim.simulator.profiles.cost_models import build_cost_model
from hybridsim.simulator.profiles.registry import load_profile
from hybridsim.simulator.workload import WorkloadSpec, build_workload

SMALL = ["m1-pro/llama2-7b", "m1-pro/mistral-7b"]
LARGE = ["swing-a100/llama2-7b", "swing-a100/mistral-7b", "swing-a100/falcon-7b"]
THRESHOLDS = np.arange(1, 4097)


def median_time(repeats: int, function: Callable[..., Any], *args: Any) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function(*args)
        times.append(time.perf_counter() - start)
    return float(np.median(times)), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    workload = build_workload(WorkloadSpec(dataset="alpaca"), seed=0)
    m, n = workload.input_tokens, workload.output_tokens
    small, large = [load_profile(name) for name in SMALL], [load_profile(name) for name in LARGE]
    print(
        f"workload: {len(workload):,} requests ({workload.name}); thresholds 1..4096 ({THRESHOLDS.size}); "
        f"median of {args.repeats}; python {platform.python_version()}, numpy {np.__version__}, "
        f"{platform.processor() or platform.machine()}"
    )

    for rule in ("input", "output"):
        lengths, sweep_name = paper_lengths(m, n, rule)

        def price(lengths: np.ndarray, sweep_name: str) -> Any:
            return paper_costs(
                lengths, per_bin_table(small, sweep_name, "A"), per_bin_table(large, sweep_name, "B")
            )

        t_price, costs = median_time(args.repeats, price, lengths, sweep_name)
        t_sweep, result = median_time(args.repeats, sweep, lengths, costs, THRESHOLDS, rule)
        print(
            f"paper       {rule:<8} pricing {t_price * 1e3:8.2f} ms   sweep {t_sweep * 1e3:7.2f} ms   "
            f"best T = {result.thresholds[result.best_index]}"
        )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # extrapolation warnings: the benchmark times, it does not judge
        models_small = [build_cost_model(profile, "interpolated", "extrapolate") for profile in small]
        models_large = [build_cost_model(profile, "interpolated", "extrapolate") for profile in large]
        t_price, costs = median_time(args.repeats, per_request_costs, models_small, models_large, m, n)
    for rule in ("input", "output", "product"):
        key = routing_key(m, n, rule)
        t_sweep, result = median_time(args.repeats, sweep, key, costs, THRESHOLDS, rule)
        print(
            f"per-request {rule:<8} pricing {t_price * 1e3:8.2f} ms   sweep {t_sweep * 1e3:7.2f} ms   "
            f"best T = {result.thresholds[result.best_index]}"
        )


if __name__ == "__main__":
    main()
