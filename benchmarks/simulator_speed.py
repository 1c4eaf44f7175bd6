"""How fast does the datacenter simulator run? Simulated requests per wall-clock second, and peak memory.

A million Alpaca-shaped requests (Poisson arrivals, token lengths drawn from the built-in `alpaca` table,
answers cut at 512 tokens) on a 100-node hybrid cluster (80 M1 Pro nodes with a queue each, 20 A100 nodes
behind one shared queue), routed by a policy, through `hybridsim.simulator.engine.simulate` end to end:
pricing every request on both systems, the SimPy event loop, and the per-request table.

Beside it, in the same process and on the same arrivals and service times, the minimal SimPy model of the
same queue: one process per request that requests one `simpy.Resource` slot (capacity 100) and holds it
for one timeout. The target is at least half the minimal model's throughput, and peak memory (the
process's maximum resident set, which includes Python and the libraries) under 1.5 GB.

    python benchmarks/simulator_speed.py                      # 1M requests, input_threshold
    python benchmarks/simulator_speed.py --requests 100000 --policy cost_greedy
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from typing import Any

import numpy as np
import simpy
from hybridsim.simulator.arrivals import RequestStream, arrival_times
from hybridsim.simulator.cluster import PoolSetup
from hybridsim.simulator.engine import PoolConfig, simulate
from hybridsim.simulator.policies import make_policy
from hybridsim.simulator.predictors import make_predictor
from hybridsim.simulator.profiles.cost_models import build_cost_model
from hybridsim.simulator.profiles.registry import load_profile
from hybridsim.simulator.workload.spec import WorkloadSpec, build_workload

POLICIES: dict[str, dict[str, Any]] = {
    "input_threshold": {"threshold": 32, "below": "m1", "above": "a100"},
    "join_shortest_queue": {},
    "round_robin": {},
    "cost_greedy": {"lam": 0.5, "idle_aware": True},
    "energy_under_slo": {"slo_s": 60.0},
}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def build(requests: int, rate: float, seed: int) -> tuple[list[PoolConfig], RequestStream]:
    lengths = build_workload(WorkloadSpec(dataset="alpaca", requests=requests), seed)
    limit = np.full(requests, 512, dtype=np.int64)
    times = arrival_times("poisson", np.random.default_rng(seed + 1), rate, count=requests)
    stream = RequestStream(times, lengths.input_tokens, np.minimum(lengths.output_tokens, limit), limit)
    pools = []
    for name, profile_name, count, queue in (
        ("m1", "m1-pro/llama2-7b", 80, "fifo"),
        ("a100", "swing-a100/llama2-7b", 20, "shared"),
    ):
        profile = load_profile(profile_name)
        model = build_cost_model(profile, "interpolated", "clamp")
        pools.append(
            PoolConfig(
                PoolSetup(name, count, profile.metadata.idle_power_w, queue), model, profile=profile_name
            )
        )
    return pools, stream


def minimal_simpy(arrival_s: np.ndarray, service_s: np.ndarray, capacity: int) -> float:
    """The textbook SimPy model: a process per request, one Resource request, one timeout. Returns seconds."""
    env = simpy.Environment()
    servers = simpy.Resource(env, capacity=capacity)
    gaps = np.diff(np.concatenate([[0.0], arrival_s])).tolist()
    service = service_s.tolist()

    def request(index: int):  # noqa: ANN202 - a SimPy process
        with servers.request() as slot:
            yield slot
            yield env.timeout(service[index])

    def source():  # noqa: ANN202 - a SimPy process
        for index, gap in enumerate(gaps):
            yield env.timeout(gap)
            env.process(request(index))

    started = time.perf_counter()
    env.process(source())
    env.run()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument(
        "--rate", type=float, default=2.5, help="arrivals per second (default 2.5: M1 ~75%% busy)"
    )
    parser.add_argument("--policy", choices=sorted(POLICIES), default="input_threshold")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()

    pools, stream = build(args.requests, args.rate, args.seed)
    before = peak_rss_mb()
    started = time.perf_counter()
    result = simulate(
        pools,
        stream,
        make_policy(args.policy, POLICIES[args.policy]),
        make_predictor("oracle"),
        np.random.default_rng(args.seed),
    )
    ours_s = time.perf_counter() - started
    ours_peak = peak_rss_mb()
    table = result.table
    minimal_s = minimal_simpy(np.asarray(stream.arrival_s), table["service_s"], capacity=100)

    figures = {
        "requests": args.requests,
        "nodes": 100,
        "policy": args.policy,
        "rate_per_s": args.rate,
        "ours_s": ours_s,
        "ours_requests_per_s": args.requests / ours_s,
        "minimal_simpy_s": minimal_s,
        "minimal_simpy_requests_per_s": args.requests / minimal_s,
        "ratio_ours_to_minimal": minimal_s / ours_s,
        "peak_rss_mb_before_run": before,
        "peak_rss_mb_after_our_run": ours_peak,
        "peak_rss_mb_after_both": peak_rss_mb(),
        "utilisation": {
            name: float(
                result.ledger["busy_s"][result.node_system == k].sum()
                / ((result.node_system == k).sum() * result.horizon_s)
            )
            for k, name in enumerate(result.systems)
        },
        "mean_wait_s": float(table["wait_s"].mean()),
    }
    print(
        f"{args.requests:,} Alpaca-shaped requests, 100 nodes (80 M1 Pro fifo + 20 A100 shared), "
        f"policy {args.policy}, {args.rate} req/s"
    )
    print(
        f"  hybridsim engine : {figures['ours_requests_per_s']:>10,.0f} simulated requests / s "
        f"({ours_s:.2f} s, end to end incl. pricing and the per-request table)"
    )
    print(
        f"  minimal SimPy    : {figures['minimal_simpy_requests_per_s']:>10,.0f} simulated requests / s "
        f"({minimal_s:.2f} s, event loop only)"
    )
    print(f"  ratio            : {figures['ratio_ours_to_minimal']:.2f} x the minimal model (target >= 0.5)")
    print(
        f"  peak memory      : {ours_peak:,.0f} MB resident after our run "
        f"({figures['peak_rss_mb_after_both']:,.0f} MB after both; target < 1,536 MB)"
    )
    print("  utilisation      : " + ", ".join(f"{k} {v:.2f}" for k, v in figures["utilisation"].items()))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(figures, handle, indent=2, sort_keys=True)
            handle.write("\n")


if __name__ == "__main__":
    main()
