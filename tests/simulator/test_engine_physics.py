"""The simulator obeys the bookkeeping physics of a datacenter.

Every request is served exactly once and by one node at a time; energy adds up (each request's active
energy is its profile's E(m, n) on the system that served it, batches share theirs; per-request active
energy + idle power x the idle time the nodes' own books leave = the report); and at vanishing load every
request costs exactly what the closed-form (no-queue) analysis says.
"""

from __future__ import annotations

import numpy as np
import pytest
from hybridsim.simulator.engine import simulate
from hybridsim.simulator.metrics.summary import summarise
from hybridsim.simulator.policies import BUILTIN_POLICIES, make_policy
from hybridsim.simulator.predictors import make_predictor
from hybridsim.simulator.profiles.cost_models import build_cost_model
from sim_fakes import FAST, SLOW, alpaca_like, pool, stream

PARAMS = {
    "round_robin": {},
    "random": {},
    "join_shortest_queue": {},
    "all_on": {"system": "fast"},
    "input_threshold": {"threshold": 20, "below": "slow", "above": "fast"},
    "output_threshold": {"threshold": 40, "below": "slow", "above": "fast"},
    "product_threshold": {"threshold": 30, "below": "slow", "above": "fast"},
    "cost_greedy": {"lam": 0.5, "reference": "fast"},
    "energy_under_slo": {"slo_s": 20.0},
}
MIXED = [pool("slow", 6, SLOW, idle_w=2.0, queue="fifo"), pool("fast", 3, FAST, idle_w=50.0, queue="shared")]


def run(policy: str, pools=MIXED, requests=3000, rate=1.5, predictor="bucket_mean"):
    result = simulate(
        pools,
        alpaca_like(requests, rate),
        make_policy(policy, PARAMS[policy]),
        make_predictor(predictor),
        np.random.default_rng(5),
        np.random.default_rng(6),
    )
    return result


BATCHING_ONLY = {"token_jsq", "marginal_energy"}
"""Policies for batching pools, exercised in test_continuous_physics.py."""


def test_every_builtin_policy_is_exercised() -> None:
    assert set(PARAMS) | BATCHING_ONLY == set(BUILTIN_POLICIES)


@pytest.mark.parametrize("policy", sorted(PARAMS))
def test_every_request_is_served_exactly_once_one_at_a_time_in_order(policy: str) -> None:
    result = run(policy)
    table = result.table
    assert (table["node"] >= 0).all()
    assert result.ledger["served"].sum() == len(table)
    assert np.array_equal(np.bincount(table["node"], minlength=9), result.ledger["served"])
    assert (table["start_s"] >= table["arrival_s"] - 1e-9).all()
    assert (table["finish_s"] >= table["start_s"]).all()
    for node in range(9):
        mine = table["node"] == node
        starts, finishes = table["start_s"][mine], table["finish_s"][mine]
        order = np.argsort(starts, kind="stable")
        # One request at a time: each service begins after the previous one on the node ended.
        assert (starts[order][1:] >= finishes[order][:-1] - 1e-9).all()
        # First come, first served: on a node, requests start in the order they arrived.
        assert (np.diff(starts) >= -1e-9).all()
        assert np.isclose(table["service_s"][mine].sum(), result.ledger["busy_s"][node], rtol=1e-9)


def test_a_shared_queue_serves_its_pool_in_arrival_order() -> None:
    table = run("round_robin").table
    fast = table["system_code"] == 1
    assert (np.diff(table["start_s"][fast]) >= -1e-9).all()


@pytest.mark.parametrize("policy", ["round_robin", "cost_greedy", "join_shortest_queue"])
def test_energy_adds_up_from_requests_to_nodes_to_report(policy: str) -> None:
    result = run(policy)
    table = result.table
    m, n, on_slow = table["input_tokens"], table["output_tokens"], table["system_code"] == 0
    # Unbatched: each request costs exactly what its system's profile says, CPU and GPU apart.
    for column, slow, fast in (
        ("energy_j", SLOW.energy_j(m, n), FAST.energy_j(m, n)),
        ("cpu_energy_j", SLOW.cpu_energy_j(m, n), FAST.cpu_energy_j(m, n)),
        ("gpu_energy_j", SLOW.gpu_energy_j(m, n), FAST.gpu_energy_j(m, n)),
    ):
        assert np.allclose(table[column], np.where(on_slow, slow, fast), rtol=1e-12)
    assert np.allclose(table["cpu_energy_j"] + table["gpu_energy_j"], table["energy_j"])
    node_active = np.bincount(table["node"], weights=table["energy_j"], minlength=9)
    idle = result.idle_power_w * (result.horizon_s - result.ledger["busy_s"])
    node_total = node_active + idle
    summary = summarise(result)
    assert summary["energy"]["total_j"] == pytest.approx(node_total.sum(), rel=1e-9)
    assert summary["energy"]["idle_j"] == pytest.approx(idle.sum(), rel=1e-9)
    assert summary["energy"]["total_kwh"] == pytest.approx(node_total.sum() / 3.6e6, rel=1e-9)
    by_system = sum(system["energy"]["total_j"] for system in summary["systems"].values())
    assert by_system == pytest.approx(summary["energy"]["total_j"], rel=1e-9)
    for position, name in enumerate(result.systems):
        nodes = result.node_system == position
        assert summary["systems"][name]["energy"]["total_j"] == pytest.approx(
            node_total[nodes].sum(), rel=1e-9
        )


def test_batches_share_their_energy_and_the_books_still_balance() -> None:
    pools = [
        pool("slow", 2, SLOW, queue="fifo", max_batch=4, growth=0.2),
        pool("fast", 1, FAST, queue="shared", max_batch=3, growth=0.5),
    ]
    result = run("round_robin", pools=pools, requests=2000, rate=2.0)
    table = result.table
    assert result.ledger["served"].sum() == len(table)
    assert np.allclose(table["cpu_energy_j"] + table["gpu_energy_j"], table["energy_j"])
    # Batches happened, and members of a batch start and finish together.
    starts = table["start_s"][table["node"] == 0]
    assert np.unique(starts).size < starts.size
    for start in np.unique(starts)[:50]:
        members = (table["node"] == 0) & (table["start_s"] == start)
        k = int(members.sum())
        alone_r = SLOW.runtime_s(table["input_tokens"][members], table["output_tokens"][members])
        alone_e = SLOW.energy_j(table["input_tokens"][members], table["output_tokens"][members])
        assert np.allclose(table["service_s"][members], alone_r.max() * (1 + 0.2 * (k - 1)))
        assert table["energy_j"][members].sum() == pytest.approx(alone_e.max() * (1 + 0.2 * (k - 1)))
        # ... shared in proportion to what each member would have cost alone.
        assert np.allclose(
            table["energy_j"][members] / alone_e, alone_e.max() * (1 + 0.2 * (k - 1)) / alone_e.sum()
        )
    # Every request, batched or not, pays a positive share of its batch.
    assert (table["energy_j"] > 0).all()


def test_at_vanishing_load_each_request_costs_its_closed_form_values() -> None:
    m = np.array([5, 12, 40, 300, 7, 90])
    n = np.array([3, 200, 15, 64, 700, 1])
    requests = stream(np.arange(m.size) * 1e5, m, n)
    result = simulate(
        MIXED,
        requests,
        make_policy("input_threshold", PARAMS["input_threshold"]),
        make_predictor("max_tokens"),
    )
    table = result.table
    on_slow = m <= 20
    expected_r = np.where(on_slow, SLOW.runtime_s(m, n), FAST.runtime_s(m, n))
    expected_e = np.where(on_slow, SLOW.energy_j(m, n), FAST.energy_j(m, n))
    assert np.array_equal(table["system_code"] == 0, on_slow)
    assert (table["wait_s"] == 0).all()
    assert np.allclose(table["service_s"], expected_r, rtol=1e-12)
    assert np.allclose(table["latency_s"], expected_r, rtol=1e-12)
    assert np.allclose(table["energy_j"], expected_e, rtol=1e-12)
    summary = summarise(result)
    assert summary["energy"]["active_j"] == pytest.approx(expected_e.sum(), rel=1e-12)


def test_power_cap_stretches_runtime_and_scales_gpu_power() -> None:
    from hybridsim.simulator.cluster import PowerCap

    capped = [pool("fast", 1, FAST, cap=PowerCap(runtime_factor=1.067, power_factor=0.7))]
    m, n = np.array([10, 100]), np.array([50, 5])
    result = simulate(
        capped,
        stream([0.0, 1e4], m, n),
        make_policy("all_on", {"system": "fast"}),
        make_predictor("max_tokens"),
    )
    table = result.table
    assert np.allclose(table["service_s"], FAST.runtime_s(m, n) * 1.067)
    assert np.allclose(table["gpu_energy_j"], FAST.gpu_energy_j(m, n) * 1.067 * 0.7)
    assert np.allclose(table["cpu_energy_j"], FAST.cpu_energy_j(m, n) * 1.067)


def test_vanishing_load_totals_agree_with_the_threshold_analysis() -> None:
    """Built-in M1 Pro and A100 profiles, input threshold 32: the simulator's totals at vanishing load
    are the closed-form per-request sums of the static analysis (simulator.analysis.threshold)."""
    from hybridsim.simulator.analysis.threshold import per_request_costs, sweep
    from hybridsim.simulator.cluster import PoolSetup
    from hybridsim.simulator.engine import PoolConfig
    from hybridsim.simulator.profiles.registry import load_profile

    rng = np.random.default_rng(3)
    m = rng.integers(9, 400, 400)
    n = rng.integers(8, 500, 400)
    models = {
        name: build_cost_model(load_profile(name), "interpolated", "error")
        for name in ("m1-pro/llama2-7b", "swing-a100/llama2-7b")
    }
    pools = [
        PoolConfig(PoolSetup("m1", 2, 0.0), models["m1-pro/llama2-7b"]),
        PoolConfig(PoolSetup("a100", 2, 0.0), models["swing-a100/llama2-7b"]),
    ]
    result = simulate(
        pools,
        stream(np.arange(m.size) * 1e4, m, n),
        make_policy("input_threshold", {"threshold": 32, "below": "m1", "above": "a100"}),
        make_predictor("max_tokens"),
    )
    closed = sweep(
        m,
        per_request_costs([models["m1-pro/llama2-7b"]], [models["swing-a100/llama2-7b"]], m, n),
        [32],
        "input",
    )
    assert result.table["energy_j"].sum() == pytest.approx(closed.energy_j[0], rel=1e-9)
    assert result.table["service_s"].sum() == pytest.approx(closed.runtime_s[0], rel=1e-9)
    assert (result.table["system_code"] == 0).sum() == closed.requests_on_a[0]


def test_memory_stays_columnar_no_object_per_finished_request() -> None:
    """Peak traced memory of a whole run, per request: the preallocated columns and the final table
    (about 300 bytes); a Python object kept per request would add a few hundred more."""
    import tracemalloc

    requests = alpaca_like(60_000, 1.5)
    tracemalloc.start()
    try:
        simulate(MIXED, requests, make_policy("cost_greedy", {"lam": 0.5}), make_predictor("bucket_mean"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak / 60_000 < 400
