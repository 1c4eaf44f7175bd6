"""How long does the offline bound take? LP size and solve time against the number of requests.

The default scenario's requests (48 M1 Pro + 6 A100, Alpaca-shaped Poisson arrivals at 2.5 req/s, answers
cut at 512 tokens), priced on both systems, handed to `analysis.offline_bound.offline_energy_bound` with its
defaults (64 arrival windows, exact groups up to 50,000, then coarser ones). The LP's size is bounded by
the groups, not the requests: past ~50,000 distinct cost vectors the requests are grouped within a relative
cost resolution (printed) and the bound is a little looser.

    python benchmarks/offline_bound.py                         # 10k, 40k, 160k requests
    python benchmarks/offline_bound.py --requests 40000 --windows 16 64 256
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from hybridsim.simulator.analysis.offline_bound import BoundPool, offline_energy_bound
from hybridsim.simulator.arrivals import arrival_times
from hybridsim.simulator.cluster import price_requests
from hybridsim.simulator.profiles.cost_models import build_cost_model
from hybridsim.simulator.profiles.registry import load_profile
from hybridsim.simulator.workload.spec import WorkloadSpec, build_workload


def pools_and_arrivals(requests: int, seed: int) -> tuple[list[BoundPool], np.ndarray]:
    lengths = build_workload(WorkloadSpec(dataset="alpaca", requests=requests), seed)
    outputs = np.minimum(lengths.output_tokens, 512)
    arrival = arrival_times("poisson", np.random.default_rng(seed + 1), 2.5, count=requests)
    pools = []
    for name, profile_name, count in (("m1", "m1-pro/llama2-7b", 48), ("a100", "swing-a100/llama2-7b", 6)):
        profile = load_profile(profile_name)
        costs = price_requests(
            build_cost_model(profile, "interpolated", "clamp"), lengths.input_tokens, outputs
        )
        pools.append(BoundPool(name, count, profile.metadata.idle_power_w, costs.energy_j, costs.runtime_s))
    return pools, arrival


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, nargs="+", default=[10_000, 40_000, 160_000])
    parser.add_argument("--windows", type=int, nargs="+", default=[64])
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(
        f"{'requests':>9} {'windows':>8} {'groups':>8} {'variables':>10} {'rows':>8} {'resolution':>11} "
        f"{'bound kWh':>10} {'seconds':>8}"
    )
    for requests in args.requests:
        pools, arrival = pools_and_arrivals(requests, args.seed)
        for windows in args.windows:
            started = time.perf_counter()
            bound = offline_energy_bound(arrival, pools, float(arrival[-1]), windows=windows)
            elapsed = time.perf_counter() - started
            resolution = "exact" if bound.resolution is None else f"{bound.resolution:g}"
            print(
                f"{requests:>9,} {bound.windows:>8} {bound.groups:>8,} {bound.variables:>10,} "
                f"{bound.constraints:>8,} {resolution:>11} {bound.energy_j / 3.6e6:>10.4f} {elapsed:>8.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
