"""The vectorised sweep is the plain sum over requests it claims to be, for every rule and threshold."""

from __future__ import annotations

import numpy as np
import pytest
from hybridsim.simulator.analysis.threshold import (
    PerBinTable,
    RequestCosts,
    outside_range,
    paper_costs,
    paper_lengths,
    per_request_costs,
    routing_key,
    sweep,
)

from hybridsim.core.errors import HybridsimError


def loop_sweep(
    m: list[int], n: list[int], costs: RequestCosts, thresholds: list[int], rule: str, lam: float
) -> dict:
    """The definition, one request at a time."""
    out = {"energy": [], "runtime": [], "on_a": [], "u": []}
    energy_b = sum(costs.energy_b)
    runtime_b = sum(costs.runtime_b)
    for t in thresholds:
        energy = runtime = 0.0
        on_a = 0
        for i in range(len(m)):
            small = {"input": m[i] <= t, "output": n[i] <= t, "product": m[i] * n[i] <= t * t}[rule]
            energy += costs.energy_a[i] if small else costs.energy_b[i]
            runtime += costs.runtime_a[i] if small else costs.runtime_b[i]
            on_a += small
        out["energy"].append(energy)
        out["runtime"].append(runtime)
        out["on_a"].append(on_a)
        out["u"].append(lam * energy / energy_b + (1 - lam) * runtime / runtime_b)
    return out


@pytest.mark.parametrize("rule", ["input", "output", "product"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vectorised_sweep_matches_a_plain_loop(rule: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    size = int(rng.integers(1, 300))
    m, n = rng.integers(1, 200, size), rng.integers(1, 200, size)
    costs = RequestCosts(*(rng.uniform(0.1, 100, size) for _ in range(4)))
    thresholds = [0, 1, 5, 17, 64, 150, 199, 200, 1000]
    lam = float(rng.uniform())
    result = sweep(routing_key(m, n, rule), costs, thresholds, rule, lam)
    expected = loop_sweep(m.tolist(), n.tolist(), costs, thresholds, rule, lam)
    np.testing.assert_allclose(result.energy_j, expected["energy"], rtol=1e-10)
    np.testing.assert_allclose(result.runtime_s, expected["runtime"], rtol=1e-10)
    np.testing.assert_allclose(result.cost_u, expected["u"], rtol=1e-10)
    assert result.requests_on_a.tolist() == expected["on_a"]
    # T = 0 puts everything on B; T beyond every key puts everything on A
    assert result.energy_j[0] == pytest.approx(result.energy_all_b) and result.cost_u[0] == pytest.approx(1.0)
    assert result.energy_j[-1] == pytest.approx(result.energy_all_a)
    assert result.energy_j[result.best_index] == result.energy_j.min()


def test_energy_is_conserved_across_the_split() -> None:
    """Every request is costed exactly once, on exactly one system, at every threshold."""
    rng = np.random.default_rng(5)
    m = rng.integers(1, 50, 1000)
    ones = np.ones(1000)
    result = sweep(m, RequestCosts(ones, 2 * ones, ones, ones), np.arange(0, 51), "input")
    np.testing.assert_allclose(result.energy_j, 2000 - result.requests_on_a)
    np.testing.assert_allclose(result.runtime_s, 1000)


def test_empty_workload_and_bad_lambda_are_refused() -> None:
    empty = np.zeros(0)
    with pytest.raises(HybridsimError, match="no requests"):
        sweep(empty, RequestCosts(empty, empty, empty, empty), [1], "input")
    one = np.ones(1)
    with pytest.raises(HybridsimError, match="lam"):
        sweep(one, RequestCosts(one, one, one, one), [1], "input", lam=1.5)


def table(bins: list[int], ept: list[float], runtime: list[float]) -> PerBinTable:
    return PerBinTable(
        "s", "input", np.array(bins), np.array(ept), np.array(runtime), np.ones(len(bins), int)
    )


def test_bin_lookup_is_the_nearest_power_of_two_clipped_to_measured_bins() -> None:
    t = table([8, 16, 32, 64], [1, 2, 3, 4], [10, 20, 30, 40])
    lengths = np.array([1, 5, 6, 11, 12, 22, 23, 45, 46, 90, 91, 5000])
    # 2**round(log2 L): 6 -> 8, 11 -> 8, 12 -> 16, 22 -> 16, 23 -> 32, 45 -> 32, 46 -> 64, 91 -> 128 ->
    # clipped
    assert t.bins[t.lookup(lengths)].tolist() == [8, 8, 8, 8, 16, 16, 32, 32, 64, 64, 64, 64]
    assert t.outside(lengths) == 4  # 1 -> 1, 5 -> 4, 91 -> 128, 5000 -> 4096
    gap = table([8, 64], [1, 4], [1, 4])  # a missing bin in between: the nearest measured one in log2
    assert gap.bins[gap.lookup(np.array([16, 23, 32, 46]))].tolist() == [8, 64, 64, 64]


def test_paper_costs_multiply_energy_per_token_by_length() -> None:
    a, b = table([8, 16], [1.0, 2.0], [10.0, 20.0]), table([8, 16], [3.0, 1.0], [1.0, 2.0])
    costs = paper_costs(np.array([8, 16, 12]), a, b)
    assert costs.energy_a.tolist() == [8.0, 32.0, 24.0]
    assert costs.energy_b.tolist() == [24.0, 16.0, 12.0]
    assert costs.runtime_a.tolist() == [10.0, 20.0, 20.0]
    assert costs.extra_a["runtime_metric_artifact"].tolist() == [80.0, 320.0, 240.0]


def test_paper_lengths_follow_the_rule_and_can_replicate_the_artifact_bug() -> None:
    m, n = np.array([10, 20]), np.array([100, 200])
    assert paper_lengths(m, n, "input")[0] is m
    assert paper_lengths(m, n, "output")[0] is n and paper_lengths(m, n, "output")[1] == "output"
    assert paper_lengths(m, n, "output", artifact_output_bug=True)[0] is m
    with pytest.raises(HybridsimError, match="per-request"):
        paper_lengths(m, n, "product")


class LinearModel:
    """E = a*m + b*n, R = m + n: enough to check averaging and range counting."""

    def __init__(self, a: float, b: float) -> None:
        self.name, self.a, self.b = "lin", a, b
        self.input_range, self.output_range = (5.0, 100.0), (1.0, 50.0)

    def energy_j(self, m: np.ndarray, n: np.ndarray) -> np.ndarray:
        return self.a * np.asarray(m, float) + self.b * np.asarray(n, float)

    def runtime_s(self, m: np.ndarray, n: np.ndarray) -> np.ndarray:
        return np.asarray(m, float) + np.asarray(n, float)


def test_per_request_costs_average_a_systems_models_per_request() -> None:
    m, n = np.array([10, 10, 40, 3]), np.array([5, 5, 60, 2])
    costs = per_request_costs([LinearModel(1, 1), LinearModel(3, 1)], [LinearModel(0, 2)], m, n)
    assert costs.energy_a.tolist() == [2 * 10 + 5, 25, 2 * 40 + 60, 2 * 3 + 2]
    assert costs.energy_b.tolist() == [10, 10, 120, 4]
    assert costs.runtime_b.tolist() == [15, 15, 100, 5]
    assert outside_range(LinearModel(1, 1), m, n) == 2  # n = 60 > 50, m = 3 < 5


def test_artifact_output_tables_lose_every_bin_with_a_zero_in_its_label() -> None:
    from hybridsim.simulator.analysis.threshold import artifact_output_table

    full = table([8, 16, 512, 1024, 2048, 4096], [1] * 6, [1] * 6)
    assert artifact_output_table(full).bins.tolist() == [8, 16, 512]
