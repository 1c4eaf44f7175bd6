"""The pools' O(log n) views pick exactly the node a linear scan over every node picks, ties included."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hybridsim.simulator.cluster.min_index import CountIndex, MinIndex
from hybridsim.simulator.cluster.pool import Pool
from hybridsim.simulator.engine import simulate
from hybridsim.simulator.policies import make_policy
from hybridsim.simulator.predictors import make_predictor
from sim_fakes import FAST, SLOW, alpaca_like, pool


@pytest.mark.parametrize("seed", range(5))
def test_min_index_answers_like_a_linear_scan(seed: int) -> None:
    rng = np.random.default_rng(seed)
    size = int(rng.integers(1, 40))
    values: list[float] = rng.integers(0, 4, size).astype(float).tolist()  # few distinct values: many ties
    counts: list[int] = rng.integers(0, 4, size).tolist()
    index, count_index = MinIndex(values), CountIndex(counts)
    for _ in range(3000):
        position = int(rng.integers(size))
        values[position] = float(rng.integers(0, 4)) if rng.random() < 0.7 else float(rng.random())
        index.changed(position)
        counts[position] = max(counts[position] + int(rng.choice([-1, 1, 1])), 0)
        count_index.changed(position)
        assert index.smallest() == values.index(min(values))
        assert count_index.smallest() == counts.index(min(counts))
        assert len(index._heap) <= 4 * size + 65  # stale entries are swept: memory stays O(n)
        assert len(count_index._heap) <= 4 * size + 65


def linear_least_loaded(pool: Pool) -> tuple[float, int]:
    """The view as it was computed before the index: a scan of every node's load."""
    if pool.shared:
        if pool.idle:
            return 0.0, next(reversed(pool.idle)).local
        return (len(pool.queue) + 1) / len(pool.nodes), 0
    fewest = min(pool.loads)
    return float(fewest), pool.loads.index(fewest)


def linear_soonest(pool: Pool) -> tuple[tuple[float, int], list[float], list[float], int]:
    """The soonest-free view by a scan, on copies: (answer, free_at after, pred_end
    after, overruns noticed).
    """
    now = pool.cluster.env.now
    free_at = list(pool.free_at)
    pred_end = [node.pred_end for node in pool.nodes]
    if pool.shared:
        if pool.idle:
            return (0.0, next(reversed(pool.idle)).local), free_at, pred_end, 0
        backlog = pool.queued_est + pool.pred_end_sum - len(pool.nodes) * now
        return (max(backlog, 0.0) / len(pool.nodes), 0), free_at, pred_end, 0
    overruns = 0
    while True:
        first = min(free_at)
        local = free_at.index(first)
        if first > now or not pool.nodes[local].busy:
            return (max(first - now, 0.0), local), free_at, pred_end, overruns
        pushed = now + max(now - pred_end[local], 1e-6)
        free_at[local] += pushed - pred_end[local]
        pred_end[local] = pushed
        overruns += 1


@pytest.fixture
def checked(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Every least_loaded/soonest call of the run is compared with the linear scan on the same state."""
    seen = {"least_loaded": 0, "soonest": 0, "overruns": 0, "ties": 0}
    least_loaded: Callable[[Pool], Any] = Pool.least_loaded
    soonest: Callable[[Pool], Any] = Pool.soonest

    def check_least_loaded(self: Pool) -> Any:
        expected = linear_least_loaded(self)
        got = least_loaded(self)
        assert (got[0], got[1].local) == expected
        seen["least_loaded"] += 1
        seen["ties"] += not self.shared and self.loads.count(min(self.loads)) > 1
        return got

    def check_soonest(self: Pool) -> Any:
        expected, free_at, pred_end, overruns = linear_soonest(self)
        got = soonest(self)
        assert (got[0], got[1].local) == expected
        assert self.free_at == free_at and [node.pred_end for node in self.nodes] == pred_end
        seen["soonest"] += 1
        seen["overruns"] += overruns
        return got

    monkeypatch.setattr(Pool, "least_loaded", check_least_loaded)
    monkeypatch.setattr(Pool, "soonest", check_soonest)
    return seen


POLICIES = {
    "join_shortest_queue": {},
    "all_on": {"system": "slow"},
    "input_threshold": {"threshold": 25, "below": "slow", "above": "fast"},
    "cost_greedy": {"lam": 0.5},
    "energy_under_slo": {"slo_s": 40.0, "idle_aware": True},
}


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_every_routing_choice_matches_the_linear_scan(
    policy: str, seed: int, checked: dict[str, int]
) -> None:
    """Randomised clusters (sizes, queue disciplines, batching) under heavy load with noisy predictions, so
    that
    queues tie, predicted ends overrun and the index sees every kind of change."""
    rng = np.random.default_rng(seed)
    pools = [
        pool("slow", int(rng.integers(1, 12)), SLOW, idle_w=2.0, max_batch=int(rng.choice([1, 1, 3]))),
        pool("fast", int(rng.integers(1, 6)), FAST, idle_w=40.0, queue=str(rng.choice(["fifo", "shared"]))),
    ]
    requests = alpaca_like(400, float(rng.uniform(0.3, 3.0)), seed=seed)
    noise = float(rng.uniform(0.3, 0.9))
    simulate(
        pools,
        requests,
        make_policy(policy, POLICIES[policy]),
        make_predictor("oracle", noise=noise),
        np.random.default_rng(seed),
        np.random.default_rng(seed + 1),
    )
    assert checked["least_loaded"] + checked["soonest"] >= 400
    if policy in ("cost_greedy", "energy_under_slo"):
        assert checked["soonest"] >= 400


def test_the_overrun_and_tie_paths_are_exercised(checked: dict[str, int]) -> None:
    """A guard on the test above: its instances do reach the branches where a scan and a heap could differ."""
    pools = [pool("slow", 5, SLOW, idle_w=2.0), pool("fast", 3, FAST, idle_w=40.0)]
    for policy in ("cost_greedy", "join_shortest_queue"):
        simulate(
            pools,
            alpaca_like(600, 0.5, seed=9),
            make_policy(policy, POLICIES[policy]),
            make_predictor("oracle", noise=0.9),
            np.random.default_rng(1),
            np.random.default_rng(2),
        )
    assert checked["overruns"] > 10 and checked["ties"] > 10
