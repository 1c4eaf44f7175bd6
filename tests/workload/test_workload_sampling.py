"""Built-in workloads and seeded sampling: every record exactly once, or draws true
to the joint distribution.
"""

from __future__ import annotations

import numpy as np
import pydantic
import pytest
from hybridsim.simulator.workload import WorkloadSpec, build_workload, load_builtin, summarise
from hybridsim.simulator.workload.datasets import JointHistogram

from hybridsim.core.errors import HybridsimError


def test_builtins_hold_the_documented_record_counts_and_statistics() -> None:
    alpaca, sample = load_builtin("alpaca"), load_builtin("alpaca-gpt4-sample")
    assert alpaca.total == 51_941 and sample.total == 1_000
    stats = summarise(alpaca.expand())
    # shared/data/alpaca/README.md, "Summary statistics"
    assert stats["input_tokens"]["mean"] == pytest.approx(21.67, abs=0.005)
    assert stats["output_tokens"]["mean"] == pytest.approx(65.52, abs=0.005)
    assert stats["input_tokens"]["max"] == 650 and stats["output_tokens"]["max"] == 1228
    assert summarise(sample.expand())["output_tokens"]["mean"] == pytest.approx(169.98, abs=0.005)
    assert "GPT-4" in sample.provenance and "SAMPLE" in sample.provenance
    assert "davinci-003" in alpaca.provenance


def test_every_record_once_in_a_seeded_shuffled_order() -> None:
    table = load_builtin("alpaca")
    first = build_workload(WorkloadSpec(dataset="alpaca"), seed=7)
    again = build_workload(WorkloadSpec(dataset="alpaca"), seed=7)
    other = build_workload(WorkloadSpec(dataset="alpaca"), seed=8)
    assert np.array_equal(first.input_tokens, again.input_tokens)
    assert np.array_equal(first.output_tokens, again.output_tokens)
    assert not np.array_equal(first.input_tokens, other.input_tokens)
    # exactly once: the multiset of (m, n) pairs is the table itself
    rebuilt = JointHistogram.from_records(first.input_tokens, first.output_tokens, "x", "x")
    assert np.array_equal(rebuilt.input_tokens, table.input_tokens)
    assert np.array_equal(rebuilt.output_tokens, table.output_tokens)
    assert np.array_equal(rebuilt.count, table.count)
    assert first.input_tokens.dtype == np.int64 and len(first) == 51_941


def test_draws_are_deterministic_and_true_to_the_joint_distribution() -> None:
    spec = WorkloadSpec(dataset="alpaca", requests=200_000)
    drawn = build_workload(spec, seed=1)
    assert np.array_equal(drawn.input_tokens, build_workload(spec, seed=1).input_tokens)
    assert len(drawn) == 200_000
    table = load_builtin("alpaca")

    # Compare joint frequencies on coarse log2 cells (input bin x output bin): each within 5 binomial s.e.
    def cells(m: np.ndarray, n: np.ndarray, weights: np.ndarray) -> np.ndarray:
        grid = np.zeros((12, 12))
        np.add.at(grid, (np.log2(m).astype(int), np.log2(n).astype(int)), weights)
        return grid / weights.sum()

    expected = cells(table.input_tokens, table.output_tokens, table.count.astype(float))
    observed = cells(drawn.input_tokens, drawn.output_tokens, np.ones(len(drawn)))
    se = np.sqrt(expected * (1 - expected) / len(drawn)) + 1e-12
    assert np.max(np.abs(observed - expected) / se) < 5
    # the correlation between prompt and answer length survives
    expanded = table.expand()
    expected_corr = np.corrcoef(expanded.input_tokens, expanded.output_tokens)[0, 1]
    assert np.corrcoef(drawn.input_tokens, drawn.output_tokens)[0, 1] == pytest.approx(
        expected_corr, abs=0.02
    )


def test_filters_condition_the_distribution_and_an_empty_workload_is_refused() -> None:
    kept = build_workload(WorkloadSpec(dataset="alpaca", max_input_tokens=32, max_output_tokens=64), seed=0)
    assert kept.input_tokens.max() <= 32 and kept.output_tokens.max() <= 64
    assert "kept" in kept.provenance
    with pytest.raises(HybridsimError, match="no requests"):
        build_workload(WorkloadSpec(dataset="alpaca", max_input_tokens=5), seed=0)


@pytest.mark.parametrize(
    "fields, message",
    [
        ({}, "exactly one of"),
        ({"dataset": "alpaca", "csv": "x.csv"}, "exactly one of"),
        ({"dataset": "nope"}, "unknown built-in workload"),
        ({"jsonl": "x.jsonl"}, "tokenizer"),
        ({"dataset": "alpaca", "request": 5}, "Extra inputs"),
        ({"dataset": "alpaca", "requests": 0}, "greater than or equal to 1"),
    ],
)
def test_spec_rejects_what_it_cannot_mean(fields: dict, message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=message):
        WorkloadSpec.model_validate(fields)
