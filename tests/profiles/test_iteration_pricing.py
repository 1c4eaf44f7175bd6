"""Iteration pricing: a run of decode iterations priced at once (prefix sums over a grid) costs what its
iterations cost one by one, and the grid stays close to the serving model it reads."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from hybridsim.simulator.energy import PowerCap
from hybridsim.simulator.profiles.iteration_pricing import IterationPricer, first_boundary
from hybridsim.simulator.profiles.registry import load_profile
from hybridsim.simulator.profiles.serving_costs import build_serving_cost_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "simulator"))
from batching_fakes import LinearServing  # noqa: E402

CAP = PowerCap(1.1, 0.7)


@pytest.mark.parametrize(("batch", "context", "steps"), [(1, 10, 1), (7, 3000, 40), (64, 90_000, 500)])
def test_a_run_costs_the_sum_of_its_iterations(batch: int, context: int, steps: int) -> None:
    model = LinearServing(kv_capacity_tokens=200_000)
    exact, grid = IterationPricer(model, CAP), IterationPricer(model, CAP, 200_001)
    contexts = context + batch * np.arange(steps)
    cost = model.decode(np.full(steps, batch), contexts)
    time = np.cumsum(cost.time_s) * CAP.runtime_factor
    energy = np.cumsum(cost.cpu_energy_j + cost.gpu_energy_j * CAP.power_factor) * CAP.runtime_factor
    for pricer in (exact, grid):
        run = pricer.decode_run(batch, context, steps)
        assert [run.end(j) for j in range(1, steps + 1)] == pytest.approx(time, rel=1e-9)
        assert run.energy(steps) == pytest.approx(energy[-1], rel=1e-9)
        assert run.longest_step(1, steps) == pytest.approx(
            np.diff(time, prepend=0.0)[1:].max() if steps > 1 else 0
        )
        assert first_boundary(run, time[steps // 2] - 1e-12, steps) == steps // 2 + 1


def test_the_grid_follows_the_splitwise_tables_within_half_a_percent() -> None:
    profile = load_profile("splitwise-a100/llama2-70b-tp8")
    model = build_serving_cost_model(profile, "clamp")
    capacity = model.kv_capacity_tokens
    grid = IterationPricer(model, tabulate_tokens=capacity + 1)
    rng = np.random.default_rng(0)
    for batch in (1, 8, 33, 64):
        prompts = rng.integers(10, 8000, 50)
        exact = model.prefill(np.full(50, batch), prompts).time_s
        read = np.array([grid.prefill(batch, int(p))[0] for p in prompts])
        assert np.allclose(read, exact, rtol=5e-3)
        context = int(rng.integers(batch * 100, batch * 3000))
        run = grid.decode_run(batch, context, 200)
        truth = model.decode(np.full(200, batch), context + batch * np.arange(200)).time_s.sum()
        assert run.end(200) == pytest.approx(truth, rel=5e-3)
