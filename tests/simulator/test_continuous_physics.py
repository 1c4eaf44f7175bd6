"""A continuously batching pool obeys the physics: batch 1 is the request-level node, an empty room costs
the table's passes, a full one runs at the table's closed-form rate, energy adds up, and every request
(preempted ones too) is finished exactly once with every one of its tokens generated exactly once."""

from __future__ import annotations

import numpy as np
import pytest
from batching_fakes import AloneCostModel, LinearServing, continuous_pool
from hybridsim.simulator.engine import simulate
from hybridsim.simulator.policies import BUILTIN_POLICIES, make_policy
from hybridsim.simulator.predictors import make_predictor
from sim_fakes import SLOW, pool, stream


def run(pools, requests, policy="join_shortest_queue", params=None, seed=3, predictor="max_tokens"):
    return simulate(
        pools,
        requests,
        make_policy(policy, params or {}),
        make_predictor(predictor),
        np.random.default_rng(seed),
        np.random.default_rng(seed + 1),
    )


def poisson(count: int, rate: float, seed: int = 0, prompt=(10, 1500), answer=(1, 400)):
    rng = np.random.default_rng(seed)
    arrival = np.cumsum(rng.exponential(1.0 / rate, count))
    return stream(arrival, rng.integers(*prompt, count), rng.integers(*answer, count))


def test_batch_of_one_reproduces_the_request_level_node() -> None:
    serving = LinearServing()
    requests = poisson(600, 3.0)
    batching = run([continuous_pool("gpu", 2, serving, idle_w=50.0, max_num_seqs=1)], requests).table
    whole = run([pool("gpu", 2, AloneCostModel(serving), idle_w=50.0)], requests).table
    assert np.array_equal(batching["node"], whole["node"])
    for column in ("start_s", "finish_s", "latency_s", "energy_j", "cpu_energy_j", "gpu_energy_j"):
        assert np.allclose(batching[column], whole[column], rtol=1e-9, atol=1e-9), column


def test_at_vanishing_load_a_request_costs_its_prefill_and_its_batch_one_iterations() -> None:
    serving = LinearServing()
    m, n = np.array([100, 700, 1500, 30]), np.array([1, 50, 300, 2])
    requests = stream(np.arange(4) * 1000.0, m, n)
    table = run([continuous_pool("gpu", 1, serving)], requests).table
    prefill = serving.prefill(np.ones(4), m).time_s
    assert np.allclose(table["ttft_s"], prefill, rtol=1e-12)
    assert np.allclose(table["latency_s"], serving.alone_runtime_s(m, n), rtol=1e-12)
    assert np.allclose(table["energy_j"], serving.power_w * serving.alone_runtime_s(m, n), rtol=1e-12)
    decode_gaps = serving.decode(np.ones(4), m + n - 1).time_s
    assert np.allclose(table["tbt_max_s"][n > 1], decode_gaps[n > 1], rtol=1e-12)


@pytest.mark.parametrize(("seqs", "budget"), [(1, 8192), (16, 8192), (32, 6400), (8, 1600)])
def test_at_saturation_throughput_is_the_tables_closed_form(seqs: int, budget: int) -> None:
    serving = LinearServing()
    count, m, n = 4096, 200, 100
    table = run(
        [continuous_pool("gpu", 1, serving, max_num_seqs=seqs, max_num_batched_tokens=budget)],
        stream(np.zeros(count), np.full(count, m), np.full(count, n)),
    ).table
    batch = seqs  # all arrive at once; one prefill pass fills every slot, they finish together
    context = batch * (m + np.arange(1, n))
    cycle = (
        serving.prefill(batch, batch * m).time_s + serving.decode(np.full(n - 1, batch), context).time_s.sum()
    )
    closed_form = batch / cycle
    simulated = count / table["finish_s"].max()
    assert simulated == pytest.approx(closed_form, rel=0.02)


def small_kv_run(
    policy: str = "join_shortest_queue", params=None, chunked: bool = False, tabulate: bool = False
):
    serving = LinearServing(kv_capacity_tokens=6000)
    requests = poisson(1500, 6.0, seed=2, prompt=(10, 1200), answer=(1, 600))
    budget = 512 if chunked else 8192
    pools = [
        continuous_pool("gpu", 2, serving, 80.0, 32, budget, chunked_prefill=chunked, tabulate=tabulate),
        pool("slow", 3, SLOW, idle_w=5.0),
    ]
    return run(pools, requests, policy, params), requests


@pytest.mark.parametrize("chunked", [False, True])
def test_preempted_requests_finish_exactly_once_with_every_token_generated_once(chunked: bool) -> None:
    result, requests = small_kv_run(chunked=chunked)
    table = result.table
    gpu = table["system_code"] == 0
    assert table["preemptions"][gpu].sum() > 0 and result.preemptions["gpu"] == table["preemptions"].sum()
    assert (table["node"] >= 0).all() and result.ledger["served"].sum() == len(table)
    assert np.array_equal(np.bincount(table["node"], minlength=5), result.ledger["served"])
    assert (table["finish_s"] >= table["start_s"]).all() and (table["start_s"] >= table["arrival_s"]).all()
    assert (table["ttft_s"][gpu] <= table["latency_s"][gpu] + 1e-12).all()
    # each prefill emits one token per prompt, each decode iteration one per running request
    assert result.passes["gpu"]["tokens"].sum() == requests.output_tokens[gpu].sum()
    kv = result.passes["gpu"]["kv_tokens"] + result.passes["gpu"]["batch"] * ~result.passes["gpu"]["prefill"]
    assert kv.max() <= result.kv_capacity["gpu"]


@pytest.mark.parametrize("chunked", [False, True])
def test_energy_is_conserved_from_passes_to_requests_to_nodes(chunked: bool) -> None:
    result, _ = small_kv_run(chunked=chunked)
    table = result.table
    gpu = table["system_code"] == 0
    passes = result.passes["gpu"]
    per_node = np.bincount(table["node"], weights=table["energy_j"], minlength=5)[:2]
    assert np.allclose(
        per_node, np.bincount(passes["node"], weights=passes["energy_j"], minlength=2), rtol=1e-9
    )
    assert np.isclose(result.passes["gpu"]["energy_j"].sum(), table["energy_j"][gpu].sum(), rtol=1e-9)
    split = table["prefill_energy_j"][gpu] + table["decode_energy_j"][gpu]
    assert np.allclose(split, table["energy_j"][gpu], rtol=1e-9)
    assert np.allclose(table["cpu_energy_j"] + table["gpu_energy_j"], table["energy_j"], rtol=1e-9)
    assert np.isclose(result.passes["gpu"]["duration_s"].sum(), result.ledger["busy_s"][:2].sum(), rtol=1e-9)
    busy = np.bincount(passes["node"], weights=passes["duration_s"], minlength=2)
    assert np.allclose(result.idle_j[:2], 80.0 * (result.horizon_s - busy), rtol=1e-9)


PARAMS = {
    "all_on": {"system": "gpu"},
    "input_threshold": {"threshold": 300, "below": "slow", "above": "gpu"},
    "output_threshold": {"threshold": 100, "below": "slow", "above": "gpu"},
    "product_threshold": {"threshold": 200, "below": "slow", "above": "gpu"},
    "cost_greedy": {"lam": 0.5, "reference": "gpu"},
    "energy_under_slo": {"slo_s": 60.0},
    "token_jsq": {},
    "marginal_energy": {"below": "slow", "above": "gpu", "threshold": 600},
}


@pytest.mark.parametrize("policy", sorted(BUILTIN_POLICIES))
def test_every_policy_serves_a_cluster_of_both_kinds(policy: str) -> None:
    result, _ = small_kv_run(policy, PARAMS.get(policy, {}))
    assert result.ledger["served"].sum() == len(result.table)


def test_same_run_same_numbers() -> None:
    first, second = small_kv_run()[0].table, small_kv_run()[0].table
    for name, column in first.columns.items():
        assert np.array_equal(column, second[name], equal_nan=column.dtype.kind == "f"), name


def test_token_jsq_balances_kv_load_better_than_request_counts() -> None:
    serving = LinearServing(kv_capacity_tokens=400_000)
    requests = poisson(2000, 8.0, seed=4, prompt=(10, 3000), answer=(1, 500))
    spread = {}
    for policy in ("join_shortest_queue", "token_jsq"):
        result = run([continuous_pool("gpu", 4, serving, max_num_seqs=64)], requests, policy)
        passes = result.passes["gpu"]
        decode = ~passes["prefill"]
        kv = np.array(
            [
                np.average(
                    passes["kv_tokens"][decode & (passes["node"] == k)],
                    weights=passes["duration_s"][decode & (passes["node"] == k)],
                )
                for k in range(4)
            ]
        )
        spread[policy] = kv.std() / kv.mean()
    assert spread["token_jsq"] < spread["join_shortest_queue"]


def test_marginal_energy_keeps_short_requests_on_a_busy_batching_gpu() -> None:
    """An idle GPU's marginal cost is its batch-1 cost (the frugal pool wins); a busy one's is a sliver."""
    serving = LinearServing()
    frugal = {}
    params = {"below": "slow", "above": "gpu", "threshold": 300}
    for rate in (0.02, 6.0):
        requests = poisson(600, rate, seed=6, prompt=(10, 400), answer=(1, 100))
        short = requests.input_tokens + requests.output_tokens <= 300
        pools = [continuous_pool("gpu", 1, serving, max_num_seqs=64), pool("slow", 50, SLOW, idle_w=5.0)]
        table = run(pools, requests, "marginal_energy", params, predictor="oracle").table
        frugal[rate] = float(np.mean(table["system_code"][short] == 1))
    assert frugal[0.02] >= 0.75 and frugal[6.0] < frugal[0.02] - 0.3, frugal


def test_chunked_prefill_reads_a_lone_prompt_in_budget_sized_chunks() -> None:
    serving = LinearServing()
    m, n, budget = 2500, 20, 1000
    table = run(
        [continuous_pool("gpu", 1, serving, max_num_batched_tokens=budget, chunked_prefill=True)],
        stream([0.0], [m], [n]),
    ).table
    chunks = [1000, 1000, 500]
    ttft = sum(serving.prefill(1, chunk).time_s for chunk in chunks)
    assert table["ttft_s"][0] == pytest.approx(ttft, rel=1e-12)
    assert table["latency_s"][0] == pytest.approx(
        ttft + serving.alone_runtime_s(m, n) - serving.prefill(1, m).time_s, rel=1e-12
    )


def test_chunked_prefill_keeps_long_prompts_from_stalling_the_batch() -> None:
    serving = LinearServing(prefill=(0.02, 0.001, 2e-4))
    requests = poisson(400, 3.0, seed=8, prompt=(2000, 6000), answer=(50, 300))
    stalls = {}
    for chunked in (False, True):
        pools = [
            continuous_pool(
                "gpu",
                1,
                serving,
                max_num_seqs=32,
                max_num_batched_tokens=8192 if not chunked else 512,
                chunked_prefill=chunked,
            )
        ]
        stalls[chunked] = float(np.percentile(run(pools, requests).table["tbt_max_s"], 90))
    assert stalls[True] < 0.5 * stalls[False]
