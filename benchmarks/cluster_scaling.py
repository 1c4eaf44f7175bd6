"""Does the simulator keep its speed when the datacenter grows? Simulated requests per second against nodes.

The default scenario's hybrid (48 M1 Pro nodes with a queue each beside 6 A100 nodes behind one shared
queue, 54 nodes) is scaled up by a factor k (48k + 6k nodes, up to 10,800); Alpaca-shaped requests, answers
cut at 512 tokens, oracle predictions. For every shipped policy the same number of requests is simulated
end to end (`engine.simulate`: pricing, the event loop, the per-request table) at every size; each figure
is the process's CPU time, best of `--repeat` runs (the machine is shared: wall time would count other
people's work). Two loads:

* `--load fixed` (the default scenario's 2.5 req/s at every size): as many requests in flight at every
  size, so the event loop does the same work and only what the router looks at grows with the cluster.
  A router that scans every node per request slows down in proportion to the nodes; one that asks the
  pools' indexed views does not.
* `--load per-node` (2.5 req/s per 54 nodes: every node as busy at every size): also k times more services
  in flight, so SimPy's event heap is deeper (log of the requests in flight per event) and memory less
  local; round robin, which looks at nothing, shows that floor.

Target: the slowest size within 1.5x of the fastest, per policy.

    python benchmarks/cluster_scaling.py                       # 50,000 requests, 54 ... 10,800 nodes
    python benchmarks/cluster_scaling.py --load per-node       # every node as busy at every size
    python benchmarks/cluster_scaling.py --requests 10000 --scales 1 20 200 --policies join_shortest_queue
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
from hybridsim.simulator.arrivals import RequestStream, arrival_times
from hybridsim.simulator.cluster import PoolSetup
from hybridsim.simulator.engine import PoolConfig, simulate
from hybridsim.simulator.policies import make_policy
from hybridsim.simulator.predictors import make_predictor
from hybridsim.simulator.profiles.cost_models import build_cost_model
from hybridsim.simulator.profiles.registry import load_profile
from hybridsim.simulator.workload.spec import WorkloadSpec, build_workload

HYBRID = {"below": "m1", "above": "a100"}
POLICIES: dict[str, dict[str, Any]] = {
    "round_robin": {},
    "random": {},
    "join_shortest_queue": {},
    "all_on": {"system": "a100"},
    "input_threshold": {"threshold": 32, **HYBRID},
    "output_threshold": {"threshold": 32, **HYBRID},
    "product_threshold": {"threshold": 40, **HYBRID},
    "cost_greedy": {"lam": 0.5, "idle_aware": True},
    "energy_under_slo": {"slo_s": 60.0, "idle_aware": True},
}
RATE_PER_54_NODES = 2.5
"""The default scenario's load (requests per second on 54 nodes)."""


def build(scale: int, requests: int, seed: int, per_node: bool) -> tuple[list[PoolConfig], RequestStream]:
    lengths = build_workload(WorkloadSpec(dataset="alpaca", requests=requests), seed)
    limit = np.full(requests, 512, dtype=np.int64)
    rate = RATE_PER_54_NODES * (scale if per_node else 1)
    times = arrival_times("poisson", np.random.default_rng(seed + 1), rate, count=requests)
    stream = RequestStream(times, lengths.input_tokens, np.minimum(lengths.output_tokens, limit), limit)
    pools = []
    for name, profile_name, count, queue in (
        ("m1", "m1-pro/llama2-7b", 48 * scale, "fifo"),
        ("a100", "swing-a100/llama2-7b", 6 * scale, "shared"),
    ):
        profile = load_profile(profile_name)
        model = build_cost_model(profile, "interpolated", "clamp")
        setup = PoolSetup(name, count, profile.metadata.idle_power_w, queue)
        pools.append(PoolConfig(setup, model, profile=profile_name))
    return pools, stream


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10, 50, 100, 200], help="54-node units")
    parser.add_argument("--policies", nargs="+", choices=sorted(POLICIES), default=list(POLICIES))
    parser.add_argument("--load", choices=["fixed", "per-node"], default="fixed")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs per figure")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()

    sizes = [54 * scale for scale in args.scales]
    per_node = args.load == "per-node"
    built = {scale: build(scale, args.requests, args.seed, per_node) for scale in args.scales}
    rates: dict[str, dict[int, float]] = {}
    print(
        f"{args.requests:,} Alpaca-shaped requests per run; 48k M1 Pro (fifo) + 6k A100 (shared) nodes, "
        f"{RATE_PER_54_NODES} req/s {'per 54 nodes' if per_node else 'at every size'}; "
        f"simulated requests per CPU second (end to end, best of {args.repeat})"
    )
    print(f"{'policy':<22}" + "".join(f"{size:>10,}" for size in sizes) + f"{'slowest/fastest':>17}")
    for policy in args.policies:
        rates[policy] = {}
        for scale, size in zip(args.scales, sizes, strict=True):
            pools, stream = built[scale]
            best = float("inf")
            for _ in range(max(args.repeat, 1)):
                started = time.process_time()
                simulate(
                    pools,
                    stream,
                    make_policy(policy, POLICIES[policy]),
                    make_predictor("oracle"),
                    np.random.default_rng(args.seed),
                )
                best = min(best, time.process_time() - started)
            rates[policy][size] = args.requests / best
        spread = max(rates[policy].values()) / min(rates[policy].values())
        print(
            f"{policy:<22}"
            + "".join(f"{rates[policy][size]:>10,.0f}" for size in sizes)
            + f"{spread:>16.2f}x",
            flush=True,
        )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            figures = {"requests": args.requests, "load": args.load, "requests_per_s": rates}
            json.dump(figures, handle, indent=2, sort_keys=True)
            handle.write("\n")


if __name__ == "__main__":
    main()
