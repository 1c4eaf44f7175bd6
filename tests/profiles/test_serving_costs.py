"""The serving cost model: exact at measured passes, monotone between them, the out-of-range contract."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest
from hybridsim.simulator.profiles.serving_costs import build_serving_cost_model
from serving_fakes import serving_profile

from hybridsim.core.errors import HybridsimError, ProfileRangeError
from hybridsim.core.profile_model import Profile

TABLES = (("prefill", "prompt_tokens"), ("decode", "context_tokens"))


def _noisy(profile: Profile) -> Profile:
    """The fake profile with a wobbly decode row (non-monotone within noise) at batch 1."""
    assert profile.serving is not None
    decode = profile.serving.decode.copy()
    ones = decode.index[decode["batch_size"] == 1]
    decode.loc[ones, "time_s_mean"] = [0.0300, 0.0310, 0.0295]
    serving = dataclasses.replace(profile.serving, decode=decode)
    return dataclasses.replace(profile, serving=serving)


@pytest.mark.parametrize(("which", "axis"), TABLES)
def test_exact_at_every_measured_pass(which: str, axis: str) -> None:
    for profile in (serving_profile(), _noisy(serving_profile())):
        model = build_serving_cost_model(profile)
        assert profile.serving is not None
        table = getattr(profile.serving, which)
        cost = getattr(model, which)(table["batch_size"].to_numpy(), table[axis].to_numpy())
        np.testing.assert_allclose(cost.time_s, table["time_s_mean"], rtol=1e-12)
        np.testing.assert_allclose(cost.cpu_energy_j, table["cpu_energy_j_mean"], rtol=1e-12)
        np.testing.assert_allclose(cost.gpu_energy_j, table["gpu_energy_j_mean"], rtol=1e-12)
        np.testing.assert_allclose(cost.energy_j, table["energy_j_mean"], rtol=1e-5)


@pytest.mark.parametrize(("which", "axis"), TABLES)
def test_between_neighbouring_measurements_along_tokens_the_cost_is_monotone_and_inside(
    which: str, axis: str
) -> None:
    profile = _noisy(serving_profile())
    model = build_serving_cost_model(profile)
    assert profile.serving is not None
    table = getattr(profile.serving, which)
    for batch, row in table.groupby("batch_size"):
        row = row.sort_values(axis)
        for (t0, y0), (t1, y1) in zip(
            zip(row[axis], row["time_s_mean"], strict=True),
            zip(row[axis].iloc[1:], row["time_s_mean"].iloc[1:], strict=True),
            strict=False,
        ):
            tokens = np.linspace(t0, t1, 201)
            times = getattr(model, which)(np.full_like(tokens, batch), tokens).time_s
            steps = np.diff(times)
            assert (steps >= -1e-15).all() or (steps <= 1e-15).all(), (batch, t0, t1)
            assert times.min() >= min(y0, y1) - 1e-12 and times.max() <= max(y0, y1) + 1e-12


@pytest.mark.parametrize(("which", "axis"), TABLES)
def test_across_batch_sizes_the_cost_is_monotone_between_the_measured_rows(which: str, axis: str) -> None:
    model = build_serving_cost_model(serving_profile())
    batches = np.linspace(4, 16, 97)
    for tokens in (64.0, 300.0, 1024.0):
        cost = getattr(model, which)(batches, np.full_like(batches, tokens))
        for values in (cost.time_s, cost.energy_j):
            steps = np.diff(values)
            assert (steps >= 0).all() or (steps <= 0).all()
        ends = getattr(model, which)(np.array([4.0, 16.0]), np.array([tokens, tokens])).time_s
        assert cost.time_s.min() >= ends.min() - 1e-12 and cost.time_s.max() <= ends.max() + 1e-12


def test_prices_broadcast_and_keep_their_shape() -> None:
    model = build_serving_cost_model(serving_profile())
    cost = model.decode(np.array([[1], [4]]), np.array([16, 64, 256]))
    assert cost.time_s.shape == (2, 3) and cost.energy_j.shape == (2, 3)
    assert model.batch_range == (1, 16) and model.kv_capacity_tokens == 100_000


def test_a_batch_size_measured_at_one_length_borrows_its_neighbours_growth() -> None:
    profile = serving_profile()
    assert profile.serving is not None
    prefill = profile.serving.prefill
    lonely = prefill[(prefill["batch_size"] != 16) | (prefill["prompt_tokens"] == 16 * 16)]
    model = build_serving_cost_model(
        dataclasses.replace(profile, serving=dataclasses.replace(profile.serving, prefill=lonely))
    )
    # Exact at its one measured point; elsewhere the power law fitted to the batch-4 row, through that point.
    measured = prefill.query("batch_size == 16 and prompt_tokens == 256")["time_s_mean"].iloc[0]
    at = float(model.prefill(16, 256).time_s)
    assert at == pytest.approx(float(measured), rel=1e-12)
    row = prefill[prefill["batch_size"] == 4]
    slope = np.polyfit(np.log(row["prompt_tokens"]), np.log(row["time_s_mean"]), 1)[0]
    assert float(model.prefill(16, 1024).time_s) / at == pytest.approx(4.0**slope, rel=1e-9)


def test_out_of_range_error_clamp_and_extrapolate() -> None:
    profile = serving_profile()
    with pytest.raises(
        ProfileRangeError,
        match=r"profile fake-serving: decode: batch_size 64 outside the measured range 1-16",
    ):
        build_serving_cost_model(profile).decode([1, 64], [64, 4096])
    with pytest.raises(
        ProfileRangeError, match=r"prefill: prompt_tokens 9000 outside the measured range 16-4096"
    ):
        build_serving_cost_model(profile).prefill(4, 9000)
    clamped = build_serving_cost_model(profile, out_of_range="clamp")
    np.testing.assert_allclose(clamped.decode(64, 9000).time_s, clamped.decode(16, 4096).time_s)
    np.testing.assert_allclose(clamped.prefill(1, 2).time_s, clamped.prefill(1, 16).time_s)
    extrapolating = build_serving_cost_model(profile, out_of_range="extrapolate")
    with pytest.warns(UserWarning, match="extrapolating serving costs"):
        beyond = extrapolating.decode(np.array([16.0, 32.0, 64.0]), np.full(3, 4096.0)).time_s
    assert beyond[0] < beyond[1] < beyond[2]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one warning per model
        extrapolating.decode(64, 4096)
    with pytest.raises(HybridsimError, match="out_of_range"):
        build_serving_cost_model(profile, out_of_range="wrap")
    with pytest.raises(HybridsimError, match=">= 1"):
        clamped.decode(0, 10)


def test_a_profile_without_serving_tables_says_how_to_get_them() -> None:
    profile = dataclasses.replace(serving_profile(), serving=None, points=pd.DataFrame())
    with pytest.raises(HybridsimError, match="no serving tables .* calibrate --serving"):
        build_serving_cost_model(profile)


@pytest.mark.parametrize("out_of_range", ["clamp", "extrapolate"])
def test_pricing_one_pass_at_a_time_agrees_with_the_vectorised_path(out_of_range: str) -> None:
    model = build_serving_cost_model(serving_profile(), out_of_range=out_of_range)
    rng = np.random.default_rng(3)
    batches, tokens = rng.integers(1, 40, 200), rng.integers(1, 9000, 200)
    batches, tokens = np.maximum(batches, 1), np.maximum(tokens, batches)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for which in ("prefill", "decode"):
            together = getattr(model, which)(batches, tokens)
            for index in range(0, 200, 7):
                alone = getattr(model, which)(int(batches[index]), int(tokens[index]))
                assert np.ndim(alone.time_s) == 0
                for field in ("time_s", "cpu_energy_j", "gpu_energy_j"):
                    assert float(getattr(alone, field)) == pytest.approx(
                        float(getattr(together, field)[index]), rel=1e-12
                    )
    with pytest.raises(ProfileRangeError, match="batch_size 40 outside"):
        build_serving_cost_model(serving_profile()).decode(40, 100)
