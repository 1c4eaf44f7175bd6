"""The paper's protocol: planned settings (plan.py), the CI stopping rule, resume,
out-of-memory and time budgets.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from calibration_fakes import FakeClock, FakeMeter, FakeRunner, fake_context, fake_runtime_s
from hybridsim.calibration.budget import RuntimeEstimator
from hybridsim.calibration.plan import ProtocolConfig, is_converged, plan_settings
from hybridsim.calibration.profile_writer import write_profile
from hybridsim.calibration.protocol import run_protocol
from hybridsim.calibration.stopping import _t_quantile_expansion, ci_halfwidth, t_quantile
from hybridsim.simulator.profiles.cost_models import build_cost_model

from hybridsim.core.profile_io import load_profile_dir, read_trials

SMALL = ProtocolConfig(
    input_tokens=(4, 8, 16, 32),
    output_tokens=(4, 8, 16, 32),
    fixed_input=8,
    fixed_output=8,
    min_trials=3,
    max_trials=6,
    warmup=1,
    ci_halfwidth_s=0.05,
    seed=3,
)


def calibrate(out: Path, runner: FakeRunner, config: ProtocolConfig = SMALL, **kwargs: object):
    return run_protocol(
        runner,
        FakeMeter(),
        out,
        config,
        progress=False,
        after_setting=lambda: write_profile(out, fake_context()),
        **kwargs,
    )


# ------------------------------------------------------------------------------------------- planning
def test_plan_measures_each_setting_once_and_the_sweeps_share_the_anchor() -> None:
    plan = plan_settings(ProtocolConfig())
    keys = [s.key for s in plan]
    assert len(keys) == len(set(keys)) == 9 + 10 - 1
    by_key = {s.key: s.sweep for s in plan}
    assert by_key[(32, 32)] == "input+output"
    assert {k for k, v in by_key.items() if "input" in v} == {(2**k, 32) for k in range(3, 12)}
    assert {k for k, v in by_key.items() if "output" in v} == {(32, 2**k) for k in range(3, 13)}


def test_plan_adds_a_missing_anchor_and_the_grid() -> None:
    plan = plan_settings(ProtocolConfig(input_tokens=(8, 64), output_tokens=(8, 64), grid=True))
    by_key = {s.key: s.sweep for s in plan}
    assert by_key[(32, 32)] == "input+output+grid"
    assert by_key[(64, 64)] == "grid" and by_key[(8, 32)] == "input+grid"
    assert len(by_key) == 9  # {8, 32, 64} x {8, 32, 64}


def test_order_is_random_but_fixed_by_the_seed() -> None:
    first, again = plan_settings(ProtocolConfig(seed=1)), plan_settings(ProtocolConfig(seed=1))
    other = plan_settings(ProtocolConfig(seed=2))
    assert first == again
    assert first != other and sorted(first, key=lambda s: s.key) == sorted(other, key=lambda s: s.key)
    assert [s.key for s in first] != sorted(s.key for s in first)


# -------------------------------------------------------------------------------------- stopping rule
@pytest.mark.parametrize(
    ("df", "expected"), [(1, 12.7062), (2, 4.3027), (4, 2.7764), (9, 2.2622), (24, 2.0639)]
)
def test_t_quantiles_match_tables_with_and_without_scipy(df: int, expected: float) -> None:
    assert t_quantile(0.95, df) == pytest.approx(expected, rel=1e-4)
    assert _t_quantile_expansion(0.95, df) == pytest.approx(expected, rel=2e-3)


def test_ci_halfwidth_is_t_times_standard_error() -> None:
    values = [1.0, 2.0, 3.0, 4.0]
    assert ci_halfwidth(values) == pytest.approx(3.1824 * np.std(values, ddof=1) / 2, rel=1e-4)
    assert math.isinf(ci_halfwidth([1.0]))


def test_stopping_rule_needs_min_trials_and_a_tight_ci_or_the_cap() -> None:
    config = ProtocolConfig(min_trials=3, max_trials=5, ci_halfwidth_s=0.5)
    assert not is_converged([10.0, 10.0], config)  # tight, but fewer than the minimum
    assert is_converged([10.0, 10.1, 10.0], config)
    assert not is_converged([1.0, 9.0, 5.0, 3.0], config)  # wide CI
    assert is_converged([1.0, 9.0, 5.0, 3.0, 7.0], config)  # the cap


# ------------------------------------------------------------------------------------ full fake runs
def test_fake_run_gives_a_profile_the_simulator_can_use(tmp_path: Path) -> None:
    summary = calibrate(tmp_path, FakeRunner())
    assert summary.settings_done == summary.settings_planned == 7 and not summary.stopped_for_budget
    trials = read_trials(tmp_path)
    warm = trials[~trials["warmup"]]
    assert (trials.groupby(["input_tokens", "output_tokens"])["warmup"].sum() == 1).all()
    counts = warm.groupby(["input_tokens", "output_tokens"]).size()
    assert counts.between(SMALL.min_trials, SMALL.max_trials).all()
    profile = load_profile_dir(tmp_path)
    model = build_cost_model(profile, "interpolated")
    assert model.runtime_s(np.array([16]), np.array([8]))[0] == pytest.approx(fake_runtime_s(16, 8), rel=0.03)
    assert model.energy_j(np.array([8]), np.array([32]))[0] == pytest.approx(
        40 * fake_runtime_s(8, 32), rel=0.03
    )
    anchor = profile.points[(profile.points["input_tokens"] == 8) & (profile.points["output_tokens"] == 8)]
    assert sorted(anchor["sweep"]) == ["input", "output"] and anchor["n_warmup_excluded"].tolist() == [1, 1]


def test_interrupted_run_keeps_its_trials_and_resume_finishes_without_duplicates(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        calibrate(tmp_path, FakeRunner(interrupt_after=9))
    before = read_trials(tmp_path)
    assert len(before) == 9
    summary = calibrate(tmp_path, FakeRunner(seed=1))
    after = read_trials(tmp_path)
    pd.testing.assert_frame_equal(after.iloc[:9], before)
    assert summary.settings_done == 7
    for (m, n), group in after.groupby(["input_tokens", "output_tokens"]):
        assert group["trial"].tolist() == list(range(len(group))), (m, n)
        assert len(group[~group["warmup"]]) >= SMALL.min_trials
    interrupted = before.iloc[-1]
    partial = after[
        (after["input_tokens"] == interrupted["input_tokens"])
        & (after["output_tokens"] == interrupted["output_tokens"])
    ]
    assert partial["warmup"].sum() == 2  # warmed up again after the restart
    # Resuming a finished run measures nothing more.
    runner = FakeRunner()
    calibrate(tmp_path, runner)
    assert runner.calls == [] and len(read_trials(tmp_path)) == len(after)


def test_out_of_memory_is_recorded_and_the_sweep_goes_on(tmp_path: Path) -> None:
    order = [s.key for s in plan_settings(SMALL)]
    assert order.index((16, 8)) < order.index((32, 8))  # with this seed the larger setting comes later
    runner = FakeRunner(oom_at={(16, 8)})
    summary = calibrate(tmp_path, runner)
    assert summary.settings_oom == 1 and summary.settings_skipped == 1 and summary.settings_done == 5
    assert (32, 8) not in runner.calls  # larger than the OOM'd setting in the same sweep
    trials = read_trials(tmp_path)
    statuses = trials.set_index(["input_tokens", "output_tokens"])["status"]
    assert statuses.loc[(16, 8)] == "oom" and statuses.loc[(32, 8)] == "skipped"
    profile = load_profile_dir(tmp_path)
    assert set(profile.sweep("input")["input_tokens"]) == {4, 8}
    assert set(profile.points.loc[profile.points["status"] != "ok", "status"]) == {"oom", "skipped"}
    assert np.isfinite(
        build_cost_model(profile, "interpolated").energy_j(np.array([8]), np.array([32]))
    ).all()
    runner = FakeRunner()
    calibrate(tmp_path, runner)  # resume: the OOM'd and skipped settings are final
    assert runner.calls == []


def test_short_generation_is_an_error_not_a_measurement(tmp_path: Path) -> None:
    summary = calibrate(tmp_path, FakeRunner(short_by=1))
    assert summary.settings_failed == 7
    assert set(read_trials(tmp_path)["status"]) == {"error"}


def test_time_budget_stops_before_the_deadline_and_resume_completes(tmp_path: Path) -> None:
    config = ProtocolConfig(
        input_tokens=(8, 64, 512),
        output_tokens=(8, 64, 512),
        fixed_input=8,
        fixed_output=8,
        min_trials=3,
        max_trials=3,
        warmup=1,
        time_budget_s=10.0,
        seed=0,
    )
    clock = FakeClock()
    summary = calibrate(tmp_path, FakeRunner(clock=clock), config, clock=clock)
    assert summary.stopped_for_budget and summary.settings_left
    assert clock.now <= 10.0
    # The cheapest setting went first, so every later decision had an estimate to work with.
    assert tuple(read_trials(tmp_path).iloc[0][["input_tokens", "output_tokens"]]) == (8, 8)
    clock.now = 0.0
    longer = ProtocolConfig(**{**vars(config), "time_budget_s": 100.0})
    summary = calibrate(tmp_path, FakeRunner(clock=clock), longer, clock=clock)
    assert not summary.stopped_for_budget and summary.settings_done == 5


def test_a_trial_cut_by_the_hard_deadline_is_discarded_and_the_run_ends(tmp_path: Path) -> None:
    clock = FakeClock()
    runner = FakeRunner(clock=clock, deadline=1.0)  # the soft budget (none here) would not have stopped it
    summary = calibrate(tmp_path, runner, clock=clock)
    trials = read_trials(tmp_path)
    assert summary.stopped_for_budget and clock.now == 1.0
    assert len(trials) == len(runner.calls) - 1  # every trial but the abandoned one
    assert trials["runtime_s"].sum() <= 1.0
    assert len(summary.settings_left) == summary.settings_planned - summary.settings_done


def test_runtime_estimator_bounds_unmeasured_settings_from_measured_ones() -> None:
    estimator = RuntimeEstimator(kv_cache=False)
    assert estimator.trial_s((32, 32)) is None and estimator.visit_s((32, 32), 1, 3) is None
    estimator.record((32, 32), 2.5, warmup=True)
    assert estimator.trial_s((32, 32)) == 2.5  # only a warm-up so far: the (pessimistic) best guess
    estimator.record((32, 32), 1.0)
    estimator.record((32, 64), 2.1)
    assert estimator.trial_s((32, 64)) == 2.1
    # From (32, 64): work n(m + n/2) grows 3x; from (32, 32): 8x. The tighter bound wins.
    assert estimator.trial_s((32, 128)) == pytest.approx(2.1 * 128 * 96 / (64 * 64))
    assert estimator.trial_s((8, 8)) == 1.0
    # Warm-ups cost the first-trial factor seen at the closest setting measured both ways (2.5 at (32, 32)).
    assert estimator.warmup_s((32, 64)) == pytest.approx(2.1 * 2.5)
    assert estimator.visit_s((32, 32), 1, 3) == pytest.approx(2.5 + 3 * 1.0)


def test_with_a_kv_cache_decoding_steps_still_bound_the_estimate() -> None:
    """Prompt tokens are cheap next to decoding steps: 8 -> 1024 output tokens is 128x, not (32+1024)/40x."""
    estimator = RuntimeEstimator(kv_cache=True)
    estimator.record((32, 8), 0.31)
    assert estimator.trial_s((32, 1024)) == pytest.approx(0.31 * 128)
    assert estimator.trial_s((2048, 8)) == pytest.approx(0.31 * 2056 / 40)


def test_real_tiny_model_through_the_protocol_to_a_profile(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    from hybridsim.calibration.runner import RunnerConfig, TransformersRunner

    runner = TransformersRunner(RunnerConfig(arch="tiny-llama", dtype="float32", device="cpu"))
    config = ProtocolConfig(
        input_tokens=(8, 16),
        output_tokens=(8, 16),
        fixed_input=16,
        fixed_output=16,
        min_trials=2,
        max_trials=3,
        warmup=1,
        seed=0,
    )
    summary = run_protocol(runner, FakeMeter(), tmp_path, config, progress=False)
    assert summary.settings_done == 3
    trials = read_trials(tmp_path)
    assert (trials["actual_output_tokens"] == trials["output_tokens"]).all()
    assert (trials["actual_input_tokens"] == trials["input_tokens"]).all()
    profile = write_profile(tmp_path, fake_context())
    assert profile is not None
    model = build_cost_model(load_profile_dir(tmp_path), "interpolated")
    measured = profile.sweep("input").set_index("input_tokens")["energy_j_mean"]
    assert model.energy_j(np.array([8]), np.array([16]))[0] == pytest.approx(measured.loc[8])
