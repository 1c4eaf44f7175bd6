"""Each routing policy sends requests where its rule says, and users can bring their own."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from hybridsim.simulator.engine import simulate
from hybridsim.simulator.policies import make_policy
from hybridsim.simulator.predictors import make_predictor
from sim_fakes import FAST, SLOW, alpaca_like, pool, stream

from hybridsim.core.errors import HybridsimError

POOLS = [pool("slow", 6, SLOW, idle_w=2.0), pool("fast", 3, FAST, idle_w=50.0, queue="shared")]
M = np.array([5, 12, 40, 300, 7, 90, 20, 21, 3, 1500])
N = np.array([3, 200, 15, 64, 700, 1, 30, 31, 900, 2])


def quiet(policy: str, params: dict, predictor: str = "oracle", pools=POOLS, max_tokens: int = 4096):
    """Vanishing load: requests 1e5 s apart, so every queue is empty at every arrival."""
    requests = stream(np.arange(M.size) * 1e5, M, N, max_tokens=max_tokens)
    return simulate(
        pools, requests, make_policy(policy, params), make_predictor(predictor), np.random.default_rng(1)
    ).table


def on_slow(table) -> np.ndarray:
    return table["system_code"] == 0


def test_input_output_and_product_thresholds_route_on_their_size() -> None:
    two = {"below": "slow", "above": "fast"}
    assert np.array_equal(on_slow(quiet("input_threshold", {"threshold": 20, **two})), M <= 20)
    assert np.array_equal(on_slow(quiet("output_threshold", {"threshold": 30, **two})), N <= 30)
    assert np.array_equal(on_slow(quiet("product_threshold", {"threshold": 40, **two})), M * N <= 40**2)


def test_output_threshold_without_an_oracle_routes_on_the_prediction() -> None:
    """max_tokens (4096) is above every threshold: a cautious router sends everything to the fast pool."""
    table = quiet(
        "output_threshold", {"threshold": 30, "below": "slow", "above": "fast"}, predictor="max_tokens"
    )
    assert not on_slow(table).any()
    assert (table["predicted_output_tokens"] == 4096).all()


def test_round_robin_visits_every_node_in_turn_and_all_on_stays_home() -> None:
    assert quiet("round_robin", {})["node"].tolist() == [k % 9 for k in range(M.size)]
    assert (quiet("all_on", {"system": "fast"})["system_code"] == 1).all()


def test_random_spreads_uniformly_over_nodes() -> None:
    table = simulate(
        POOLS,
        alpaca_like(9000, 0.01),
        make_policy("random", {}),
        make_predictor("oracle"),
        np.random.default_rng(2),
    ).table
    assert np.bincount(table["node"], minlength=9) == pytest.approx([1000] * 9, rel=0.12)


def test_join_shortest_queue_breaks_ties_between_pools_by_size() -> None:
    table = simulate(
        POOLS,
        alpaca_like(6000, 0.001),
        make_policy("join_shortest_queue", {}),
        make_predictor("oracle"),
        np.random.default_rng(3),
    ).table
    assert on_slow(table).mean() == pytest.approx(6 / 9, abs=0.03)


@pytest.mark.parametrize(("lam", "idle_aware"), [(1.0, False), (0.0, False), (0.5, False), (1.0, True)])
def test_cost_greedy_picks_the_cheapest_pool_at_vanishing_load(lam: float, idle_aware: bool) -> None:
    def cost(model, idle_w):
        energy = model.energy_j(M, N) - (idle_w * model.runtime_s(M, N) if idle_aware else 0.0)
        return lam * energy + (1 - lam) * model.runtime_s(M, N)

    expected = cost(SLOW, 2.0) <= cost(FAST, 50.0)  # ties go to the pool listed first
    table = quiet("cost_greedy", {"lam": lam, "idle_aware": idle_aware})
    assert np.array_equal(on_slow(table), expected)
    assert expected.sum() < expected.size and (lam == 0 or expected.any())


def test_cost_greedy_normalised_by_a_reference_pool() -> None:
    lam = 0.8
    relative = lam * SLOW.energy_j(M, N) / FAST.energy_j(M, N) + (1 - lam) * SLOW.runtime_s(
        M, N
    ) / FAST.runtime_s(M, N)
    table = quiet("cost_greedy", {"lam": lam, "reference": "fast"})
    assert np.array_equal(on_slow(table), relative < 1.0)


def test_cost_greedy_counts_the_wait_and_spills_when_the_fast_pool_queues() -> None:
    pools = [pool("slow", 20, SLOW), pool("fast", 1, FAST)]
    requests = alpaca_like(4000, 6.0)
    latency = {}
    for name, policy, params in [
        ("fast only", "all_on", {"system": "fast"}),
        ("greedy", "cost_greedy", {"lam": 0.0}),
    ]:
        table = simulate(pools, requests, make_policy(policy, params), make_predictor("oracle")).table
        latency[name] = table["latency_s"].mean()
        if name == "greedy":
            assert 0.05 < on_slow(table).mean() < 0.95
    assert latency["greedy"] < latency["fast only"] / 2


def test_energy_under_slo_takes_the_cheapest_pool_that_meets_the_target() -> None:
    slo = 10.0
    fits = SLOW.runtime_s(M, N) <= slo
    cheaper = SLOW.energy_j(M, N) < FAST.energy_j(M, N)
    table = quiet("energy_under_slo", {"slo_s": slo})
    assert np.array_equal(on_slow(table), fits & cheaper)


def test_a_users_policy_class_is_loadable_as_module_colon_class(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "my_router.py").write_text(
        "class LastNode:\n"
        "    def __init__(self, offset=0):\n"
        "        self.offset = offset\n"
        "    def route(self, request, view):\n"
        "        return view.nodes[-1 - self.offset]\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    table = quiet("my_router:LastNode", {"offset": 1})
    assert (table["node"] == 7).all()
    sys.modules.pop("my_router", None)


@pytest.mark.parametrize(
    ("policy", "params", "message"),
    [
        ("input_threshold", {"threshold": 32, "below": "slow"}, "missing a required argument: 'above'"),
        ("all_on", {"system": "fast", "colour": "red"}, "unexpected keyword argument 'colour'"),
        ("no_such_module_here:Router", {}, "cannot import"),
        ("hybridsim.simulator.policies.base:Request", {}, "not a class with a route"),
        ("cost_greedy", {"lam": 2.0}, "params.lam: must be between 0 and 1"),
    ],
)
def test_bad_policies_fail_with_one_line(policy: str, params: dict, message: str) -> None:
    with pytest.raises(HybridsimError, match=message):
        make_policy(policy, params)


def test_a_policy_naming_a_missing_or_empty_pool_is_refused() -> None:
    empty = [pool("slow", 0, SLOW), pool("fast", 2, FAST)]
    with pytest.raises(HybridsimError, match="params.system: pool 'slow' has no nodes"):
        quiet("all_on", {"system": "slow"}, pools=empty)
    with pytest.raises(HybridsimError, match="params.below: no pool named 'm1'"):
        quiet("input_threshold", {"threshold": 3, "below": "m1", "above": "fast"})
