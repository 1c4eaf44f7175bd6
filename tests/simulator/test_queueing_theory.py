"""A single pool under Poisson arrivals waits as long as queueing theory says it should.

M/G/1 (one node, general service): mean wait = lam * E[S^2] / (2 (1 - rho)) (Pollaczek-Khinchine).
M/M/c (one shared queue, c nodes, exponential service): mean wait = C(c, a) / (c mu - lam) (Erlang C).
The tolerance is a few standard errors of a 150k-request run (batch means), so a real bias shows and noise
does not; the seeds are fixed, so the test is deterministic.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hybridsim.simulator.engine import simulate
from hybridsim.simulator.policies import make_policy
from hybridsim.simulator.predictors import make_predictor
from sim_fakes import LinearCostModel, pool, stream

REQUESTS = 150_000
WARMUP = 5_000


def mean_wait(pools, requests) -> tuple[float, float]:
    """(mean wait after warm-up, its standard error from 30 batch means)."""
    result = simulate(
        pools, requests, make_policy("all_on", {"system": "only"}), make_predictor("max_tokens")
    )
    waits = result.table["wait_s"][WARMUP:]
    batches = np.array_split(waits, 30)
    means = np.array([batch.mean() for batch in batches])
    return float(waits.mean()), float(means.std(ddof=1) / math.sqrt(means.size))


def erlang_c(servers: int, offered: float) -> float:
    """Probability that an arrival waits in M/M/c with offered load a = lam / mu (< c)."""
    top = offered**servers / math.factorial(servers) * servers / (servers - offered)
    return top / (sum(offered**k / math.factorial(k) for k in range(servers)) + top)


@pytest.mark.parametrize("rate", [0.5, 0.75])
def test_single_node_matches_pollaczek_khinchine(rate: float) -> None:
    rng = np.random.default_rng(11)
    n = rng.integers(1, 101, REQUESTS)  # answer lengths uniform on 1..100
    model = LinearCostModel("mg1", runtime=(0.0, 0.0, 0.02))  # service S = 0.02 s per token
    mean_s = 0.02 * 50.5  # E[S] and E[S^2] of the discrete uniform, exactly
    second_s = 0.02**2 * (100 + 1) * (2 * 100 + 1) / 6
    rho = rate * mean_s
    theory = rate * second_s / (2 * (1 - rho))
    arrivals = np.cumsum(rng.exponential(1 / rate, REQUESTS))
    measured, error = mean_wait([pool("only", 1, model)], stream(arrivals, np.ones(REQUESTS), n))
    assert abs(measured - theory) < 4 * error + 0.01 * theory, (measured, theory, error)


def test_shared_queue_matches_erlang_c() -> None:
    rng = np.random.default_rng(12)
    servers, rate, mu = 4, 3.0, 1.0
    n = rng.geometric(1e-4, REQUESTS)  # S = 1e-4 * n: exponential with mean 1 s, to 1e-4
    model = LinearCostModel("mmc", runtime=(0.0, 0.0, 1e-4))
    theory = erlang_c(servers, rate / mu) / (servers * mu - rate)
    arrivals = np.cumsum(rng.exponential(1 / rate, REQUESTS))
    measured, error = mean_wait(
        [pool("only", servers, model, queue="shared")],
        stream(arrivals, np.ones(REQUESTS), n, max_tokens=10**9),
    )
    assert abs(measured - theory) < 4 * error + 0.01 * theory, (measured, theory, error)


def test_per_node_queues_wait_longer_than_a_shared_queue() -> None:
    """Same nodes, same load: c separate FIFO queues fed round robin wait longer than one shared queue."""
    rng = np.random.default_rng(13)
    n = rng.geometric(1e-4, 40_000)
    model = LinearCostModel("q", runtime=(0.0, 0.0, 1e-4))
    requests = stream(np.cumsum(rng.exponential(1 / 3.0, 40_000)), np.ones(40_000), n, max_tokens=10**9)
    waits = {}
    for queue in ("fifo", "shared"):
        result = simulate(
            [pool("only", 4, model, queue=queue)],
            requests,
            make_policy("round_robin", {}),
            make_predictor("max_tokens"),
        )
        waits[queue] = result.table["wait_s"].mean()
    assert waits["fifo"] > 1.5 * waits["shared"]
