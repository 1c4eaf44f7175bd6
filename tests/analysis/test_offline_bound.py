"""The offline bound is a true lower bound on every router's energy, and exact
where its relaxation is tight.
"""

from __future__ import annotations

import dataclasses
import itertools
import sys
from pathlib import Path

import numpy as np
import pytest
from hybridsim.simulator.analysis.offline_bound import BoundPool, offline_energy_bound
from hybridsim.simulator.arrivals import RequestStream
from hybridsim.simulator.cluster import Cluster, Node, PowerCap
from hybridsim.simulator.engine import PoolConfig, RunResult, simulate
from hybridsim.simulator.policies import make_policy
from hybridsim.simulator.policies.base import Request, RoutingPolicy
from hybridsim.simulator.predictors import make_predictor
from hybridsim.simulator.scenario.offline_bounds import run_bound

from hybridsim.core.errors import HybridsimError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "simulator"))
from sim_fakes import FAST, SLOW, alpaca_like, pool  # noqa: E402

PARAMS = {
    "round_robin": {},
    "random": {},
    "join_shortest_queue": {},
    "all_on": {"system": "slow"},
    "input_threshold": {"threshold": 20, "below": "slow", "above": "fast"},
    "output_threshold": {"threshold": 40, "below": "slow", "above": "fast"},
    "product_threshold": {"threshold": 30, "below": "slow", "above": "fast"},
    "cost_greedy": {"lam": 0.9, "idle_aware": True},
    "energy_under_slo": {"slo_s": 60.0, "idle_aware": True},
}


def total_j(result: RunResult) -> float:
    """The run's bill as the summary counts it: active energy of every request + idle energy of every node."""
    return float(result.table["energy_j"].sum() + result.idle_j.sum())


def run(pools: list[PoolConfig], requests: RequestStream, policy: RoutingPolicy | str) -> RunResult:
    router = make_policy(policy, PARAMS[policy]) if isinstance(policy, str) else policy
    return simulate(pools, requests, router, make_predictor("oracle"), np.random.default_rng(3))


def with_duration(requests: RequestStream, duration_s: float) -> RequestStream:
    return dataclasses.replace(requests, duration_s=duration_s)


SCENARIOS = {
    "quiet": (
        [pool("slow", 4, SLOW, idle_w=2.0), pool("fast", 2, FAST, idle_w=50.0)],
        alpaca_like(250, 0.05),
    ),
    "busy-shared": (
        [pool("slow", 3, SLOW, idle_w=2.0), pool("fast", 1, FAST, idle_w=50.0, queue="shared")],
        alpaca_like(250, 0.3, seed=2),
    ),
    "overloaded": (
        [pool("slow", 2, SLOW, idle_w=5.0), pool("fast", 1, FAST, idle_w=30.0)],
        alpaca_like(200, 2.0),
    ),
    "capped-batched": (
        [
            pool("slow", 3, SLOW, idle_w=2.0, max_batch=4, growth=0.2),
            pool("fast", 2, FAST, idle_w=50.0, queue="shared", max_batch=3, cap=PowerCap(1.1, 0.7)),
        ],
        alpaca_like(250, 0.5, seed=4),
    ),
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_the_bound_is_below_every_policy(name: str) -> None:
    pools, requests = SCENARIOS[name]
    requests = with_duration(requests, float(requests.arrival_s[-1]) + 1.0)
    bound = None
    for policy in PARAMS:
        result = run(pools, requests, policy)
        if bound is None:
            bound = run_bound(result, [config.setup for config in pools], requests.duration_s or 0.0)
            assert bound.energy_j == pytest.approx(bound.marginal_j + bound.always_on_j, rel=1e-9)
        assert bound.energy_j <= total_j(result) * (1 + 1e-9), policy
        assert bound.above_pct(total_j(result)) >= -1e-7


class Scripted(RoutingPolicy):
    """A router that follows a list: request k goes to node `plan[k]` (for enumerating every placement)."""

    def __init__(self, plan: tuple[int, ...]) -> None:
        self.plan = plan

    def route(self, request: Request, view: Cluster) -> Node:
        return view.nodes[self.plan[request.index]]


def brute_force(pools: list[PoolConfig], requests: RequestStream) -> float:
    """The least energy over every router that names a node per request (every placement enumerated)."""
    nodes = sum(config.setup.count for config in pools)
    return min(
        total_j(run(pools, requests, Scripted(plan)))
        for plan in itertools.product(range(nodes), repeat=len(requests))
    )


def tiny(arrival: list[float], m: list[int], n: list[int], duration: float | None = None) -> RequestStream:
    size = len(arrival)
    return RequestStream(
        np.array(arrival, dtype=np.float64),
        np.array(m, dtype=np.int64),
        np.array(n, dtype=np.int64),
        np.full(size, 4096, dtype=np.int64),
        0.0,
        duration,
    )


def bound_of(pools: list[PoolConfig], requests: RequestStream) -> float:
    result = run(pools, requests, Scripted((0,) * len(requests)))
    return run_bound(result, [config.setup for config in pools], requests.duration_s or 0.0).energy_j


@pytest.mark.parametrize("seed", range(6))
def test_the_bound_never_exceeds_the_brute_force_optimum(seed: int) -> None:
    """Random tiny instances (4-5 requests, 3 nodes, bursts that queue): the relaxation may be loose
    (fractional placement, pooled capacity), but it must never exceed the best of all 3^n placements."""
    rng = np.random.default_rng(seed)
    size = int(rng.integers(4, 6))
    requests = tiny(
        np.sort(rng.uniform(0, 20, size)).tolist(),
        rng.integers(5, 200, size).tolist(),
        rng.integers(1, 120, size).tolist(),
        duration=float(rng.choice([0.0, 30.0])) or None,
    )
    pools = [pool("slow", 2, SLOW, idle_w=3.0), pool("fast", 1, FAST, idle_w=float(rng.uniform(5, 60)))]
    optimum = brute_force(pools, requests)
    assert bound_of(pools, requests) <= optimum * (1 + 1e-9)


def test_the_bound_equals_the_brute_force_optimum_when_no_request_can_delay_another() -> None:
    """Tight by design: requests 1000 s apart and an arrival window that ends after every possible finish, so
    the horizon is the window whatever the placement, capacity never binds, and the optimum places each
    request on its lowest-marginal system: the LP's optimum is integral and equals the brute force's."""
    requests = tiny([0.0, 1000.0, 2000.0, 3000.0], [10, 300, 40, 8], [3, 60, 400, 200], duration=5000.0)
    pools = [pool("slow", 1, SLOW, idle_w=3.0), pool("fast", 2, FAST, idle_w=20.0)]
    optimum = brute_force(pools, requests)
    assert bound_of(pools, requests) == pytest.approx(optimum, rel=1e-9)


def test_the_bound_equals_the_brute_force_optimum_when_capacity_binds() -> None:
    """Tight by design, with capacity binding: two equal requests at t = 0, one frugal slow node and one fast
    node, and an arrival window ending exactly when the slow node could finish one of them. A second request
    on the slow node would stretch the horizon (every node's idle power for R_slow more) by more than it
    saves, and fewer than one leaves savings unclaimed: the LP's optimum is the vertex y_slow = 1, integral,
    which the brute force reaches (one request on each node), and it is not 'everything on the cheapest'."""
    m, n = 20, 50
    slow_r = float(SLOW.runtime_s(m, n))
    requests = tiny([0.0, 0.0], [m, m], [n, n], duration=slow_r)
    pools = [pool("slow", 1, SLOW, idle_w=3.0), pool("fast", 1, FAST, idle_w=5.0)]
    saving = (float(FAST.energy_j(m, n)) - 5.0 * float(FAST.runtime_s(m, n))) - (
        float(SLOW.energy_j(m, n)) - 3.0 * slow_r
    )
    assert 0 < saving < 8.0 * slow_r  # the slow node is cheaper, but not worth a longer horizon
    optimum = brute_force(pools, requests)
    assert bound_of(pools, requests) == pytest.approx(optimum, rel=1e-9)
    all_slow = total_j(run(pools, requests, Scripted((0, 0))))
    assert optimum < all_slow


def test_deadlines_raise_the_bound_and_stay_below_a_run_that_meets_them() -> None:
    pools, requests = SCENARIOS["busy-shared"]
    result = run(pools, requests, "cost_greedy")
    setups = [config.setup for config in pools]
    free = run_bound(result, setups)
    met = run_bound(result, setups, deadline_s=result.table["finish_s"] + 1e-6)
    assert free.energy_j <= met.energy_j * (1 + 1e-9)
    assert met.energy_j <= total_j(result) * (1 + 1e-9)  # this run meets every one of these deadlines
    assert met.deadlines and not free.deadlines


def test_an_impossible_deadline_is_one_line() -> None:
    pools = [
        BoundPool("a", 1, 1.0, np.array([10.0, 10.0]), np.array([5.0, 5.0])),
        BoundPool("b", 1, 1.0, np.array([20.0, 20.0]), np.array([4.0, 4.0])),
    ]
    with pytest.raises(HybridsimError, match="request 1 cannot meet its deadline"):
        offline_energy_bound(np.array([0.0, 0.0]), pools, deadline_s=np.array([100.0, 3.0]))
    with pytest.raises(HybridsimError, match="no placement meets every deadline"):
        three = BoundPool("a", 1, 1.0, np.full(3, 10.0), np.full(3, 5.0))
        offline_energy_bound(np.zeros(3), [three], deadline_s=np.full(3, 6.0))


def test_coarse_groups_give_a_lower_bound_than_exact_ones() -> None:
    """Grouping within a cost resolution prices a group at its cheapest member: looser, never higher."""
    pools, requests = SCENARIOS["quiet"]
    result = run(pools, requests, "round_robin")
    setups = [config.setup for config in pools]
    exact = run_bound(result, setups)
    coarse = run_bound(result, setups, max_groups=50)
    assert exact.resolution is None and coarse.resolution is not None and coarse.groups < exact.groups
    assert coarse.energy_j <= exact.energy_j * (1 + 1e-9)


def test_every_policy_of_a_scenario_reports_its_distance_to_the_bound(tmp_path: Path) -> None:
    import json

    import yaml
    from hybridsim.simulator.scenario.loader import run_scenario

    scenario = {
        "kind": "simulation",
        "seed": 2,
        "cluster": {
            "m1": {"profile": "m1-pro/llama2-7b", "count": 4},
            "a100": {"profile": "swing-a100/llama2-7b", "count": 1, "queue": "shared"},
        },
        "cost_model": {"out_of_range": "clamp"},
        "workload": {"dataset": "alpaca"},
        "max_tokens": 256,
        "arrival": {"process": "poisson", "rate": 0.3, "requests": 300},
        "policies": [
            {"policy": "all_on", "params": {"system": "a100"}},
            {"policy": "input_threshold", "params": {"threshold": 32, "below": "m1", "above": "a100"}},
            {"policy": "cost_greedy", "params": {"lam": 1.0, "idle_aware": True}},
        ],
        "sweep": {"parameter": "cluster.a100.count", "values": [1, 2]},
        "workers": 1,
        "write_requests": False,
    }
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scenario))
    run_scenario(path, tmp_path / "out")
    runs = json.loads((tmp_path / "out" / "summary.json").read_text())["runs"]
    for run_entry in runs:
        bound = run_entry["offline_bound"]["energy_j"]
        assert 0 < bound <= run_entry["energy"]["total_j"]
        assert run_entry["above_offline_bound_pct"] == pytest.approx(
            100 * (run_entry["energy"]["total_j"] - bound) / bound
        )
    # one bound per sweep point: more A100 nodes draw more idle power all day
    assert runs[0]["offline_bound"] == runs[2]["offline_bound"] != runs[3]["offline_bound"]


def test_no_bound_is_claimed_for_a_continuously_batching_pool() -> None:
    from types import SimpleNamespace

    from hybridsim.simulator.scenario.offline_bounds import bound_pools, unsupported

    plain = pool("slow", 2, SLOW).setup
    continuous = SimpleNamespace(name="gpu", serving=object())
    assert unsupported([plain]) is None
    assert "pool gpu batches continuously" in (unsupported([plain, continuous]) or "")  # type: ignore[list-item]
    with pytest.raises(HybridsimError, match="offline bound: pool gpu batches continuously"):
        bound_pools([plain, continuous], {})  # type: ignore[list-item]
