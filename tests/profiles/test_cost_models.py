"""Cost models: exact at the measured points, monotone between them, honest about their range."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hybridsim.simulator.profiles.cost_models import build_cost_model
from hybridsim.simulator.profiles.registry import list_builtin_request_level, load_profile

from hybridsim.core.errors import HybridsimError, ProfileRangeError
from hybridsim.core.profile_model import Profile


def anchor_value(profile: Profile, column: str) -> float:
    """The trial-weighted mean of the two measurements of the sweeps' crossing point."""
    by_input, by_output = profile.sweep("input"), profile.sweep("output")
    m0, n0 = by_output["input_tokens"].iloc[0], by_input["output_tokens"].iloc[0]
    rows = pd.concat([by_input[by_input["input_tokens"] == m0], by_output[by_output["output_tokens"] == n0]])
    return float((rows[column] * rows["n_trials"]).sum() / rows["n_trials"].sum())


@pytest.mark.parametrize("name", list_builtin_request_level())
def test_interpolated_model_is_exact_at_measured_points(name: str) -> None:
    profile = load_profile(name)
    model = build_cost_model(profile)
    by_output = profile.sweep("output")
    m0, n0 = by_output["input_tokens"].iloc[0], profile.sweep("input")["output_tokens"].iloc[0]
    for sweep in ("input", "output"):
        rows = profile.sweep(sweep)
        crossing = ((rows["input_tokens"] == m0) & (rows["output_tokens"] == n0)).to_numpy()
        m, n = rows["input_tokens"].to_numpy(), rows["output_tokens"].to_numpy()
        for quantity in ("runtime_s", "cpu_energy_j", "gpu_energy_j"):
            expected = rows[f"{quantity}_mean"].to_numpy().copy()
            expected[crossing] = anchor_value(profile, f"{quantity}_mean")
            if quantity != "runtime_s":  # a component measured below 0 J (CPU above an assumed idle) is 0 J
                expected = np.maximum(expected, 0.0)
            np.testing.assert_allclose(getattr(model, quantity)(m, n), expected, rtol=1e-9, atol=1e-9)
        # energy = CPU + GPU; the stored energy column is rounded to 6 significant digits on its own.
        measured = np.where(crossing, anchor_value(profile, "energy_j_mean"), rows["energy_j_mean"])
        for component in ("cpu_energy_j_mean", "gpu_energy_j_mean"):
            measured = measured + np.maximum(-rows[component].to_numpy(), 0.0) * ~crossing
        np.testing.assert_allclose(model.energy_j(m, n), measured, rtol=2e-5)


@pytest.mark.parametrize("name", list_builtin_request_level())
def test_interpolated_model_is_monotone_between_measured_points(name: str) -> None:
    """Between two neighbouring measurements, every value lies between theirs (no overshoot)."""
    profile = load_profile(name)
    model = build_cost_model(profile)
    for sweep, axis in (("input", "input_tokens"), ("output", "output_tokens")):
        rows = profile.sweep(sweep)
        fixed = rows["output_tokens" if sweep == "input" else "input_tokens"].iloc[0]
        knots = rows[axis].to_numpy(float)
        for quantity in ("runtime_s", "gpu_energy_j"):
            at_knots = getattr(model, quantity)(*((knots, fixed) if sweep == "input" else (fixed, knots)))
            for left, right, y_left, y_right in zip(
                knots[:-1], knots[1:], at_knots[:-1], at_knots[1:], strict=True
            ):
                between = np.geomspace(left, right, 50)
                values = getattr(model, quantity)(
                    *((between, fixed) if sweep == "input" else (fixed, between))
                )
                steps = np.diff(values)
                assert np.all(steps >= -1e-9 * abs(y_right)) or np.all(steps <= 1e-9 * abs(y_right))
                assert values.min() >= min(y_left, y_right) * (1 - 1e-9)
                assert values.max() <= max(y_left, y_right) * (1 + 1e-9)


def test_long_prompts_cost_more_per_generated_token_on_a_gpu() -> None:
    """The per-step rule: off both sweeps, energy grows with m and n, and a prompt longer than m0 costs
    its extra once per generated token (no KV cache), as the Swing grid shows."""
    model = build_cost_model(load_profile("swing-a100/llama2-7b"))
    m, n = np.meshgrid(np.geomspace(9, 2117, 40), np.geomspace(8, 4096, 40), indexing="ij")
    energy = model.energy_j(m, n)
    assert np.all(np.diff(energy, axis=0) > 0) and np.all(np.diff(energy, axis=1) > 0)
    extra_at_32 = model.energy_j(2117, 32) - model.energy_j(38, 32)
    extra_at_512 = model.energy_j(2117, 512) - model.energy_j(38, 512)
    assert extra_at_512 == pytest.approx(16 * extra_at_32)
    # The Swing 9x9 grid (GPU only, one trial) measured 44.3 kJ at input bin 2048 / 512 output.
    assert model.gpu_energy_j(2117, 512) == pytest.approx(44_271, rel=0.1)


def test_out_of_range_error_names_profile_axis_value_and_range() -> None:
    model = build_cost_model(load_profile("m1-pro/llama2-7b"))
    with pytest.raises(ProfileRangeError) as caught:
        model.energy_j([38, 38, 38], [32, 600, 1024])
    message = str(caught.value)
    assert "\n" not in message
    assert "m1-pro/llama2-7b" in message and "output tokens 1024" in message and "8-512" in message
    assert "2 of 3 requests" in message
    assert isinstance(caught.value, HybridsimError)


def test_clamp_uses_the_nearest_measured_length() -> None:
    profile = load_profile("m1-pro/llama2-7b")
    clamped, exact = build_cost_model(profile, out_of_range="clamp"), build_cost_model(profile)
    assert clamped.energy_j(4000, 1024) == pytest.approx(exact.energy_j(2117, 512))
    assert clamped.runtime_s(1, 1) == pytest.approx(exact.runtime_s(9, 8))


def test_extrapolate_continues_the_power_law_and_warns_once() -> None:
    profile = load_profile("m1-pro/llama2-7b")
    model = build_cost_model(profile, out_of_range="extrapolate")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        at_1024 = model.gpu_energy_j(38, 1024)
        model.gpu_energy_j(38, [2048, 4096])
        inside = model.gpu_energy_j(38, 256)
    assert len(caught) == 1 and "extrapolating" in str(caught[0].message)
    output = profile.sweep("output")
    e256, e512 = output.loc[output["output_tokens"].isin([256, 512]), "gpu_energy_j_mean"]
    assert at_1024 == pytest.approx(e512 * e512 / e256)  # one more doubling at the last doubling's ratio
    assert inside == pytest.approx(e256)


def test_paper_model_reproduces_the_published_values_and_warns() -> None:
    """Reference README §5: Swing Llama-2 at (38, 32) gives 913 J and 2.4 s; at (541, 32) -359 J."""
    with pytest.warns(UserWarning, match="fits badly at small token counts"):
        swing = build_cost_model(load_profile("swing-a100/llama2-7b"), "paper")
    np.testing.assert_allclose(swing.energy_j([38, 541], [32, 32]), [912.66, -359.03], rtol=1e-4)
    assert swing.runtime_s(38, 32) == pytest.approx(2.42, abs=0.01)
    assert swing.cpu_energy_j(38, 32) == 0.0  # the Swing fit is GPU only
    assert (swing.input_range, swing.output_range) == ((8, 2048), (8, 2048))
    with pytest.warns(UserWarning):
        m1 = build_cost_model(load_profile("m1-pro/llama2-7b"), "paper")
    assert m1.energy_j(38, 32) == pytest.approx(254, abs=1)
    assert m1.cpu_energy_j(38, 32) + m1.gpu_energy_j(38, 32) == pytest.approx(m1.energy_j(38, 32))


def test_paper_method_without_a_fit_and_bad_options_are_user_errors() -> None:
    profile = load_profile("palmetto-a100/llama2-7b")
    with pytest.raises(HybridsimError, match="no published fit"):
        build_cost_model(profile, "paper")
    with pytest.raises(HybridsimError, match="out_of_range"):
        build_cost_model(profile, out_of_range="wrap")
    with pytest.raises(HybridsimError, match="unknown cost model method"):
        build_cost_model(profile, method="magic")


def test_vectorised_over_a_million_requests() -> None:
    model = build_cost_model(load_profile("swing-a100/mistral-7b"), out_of_range="clamp")
    rng = np.random.default_rng(0)
    m, n = rng.integers(1, 3000, 1_000_000), rng.integers(1, 5000, 1_000_000)
    energy = model.energy_j(m, n)
    assert energy.dtype == np.float64 and energy.shape == (1_000_000,) and np.all(energy > 0)


def test_grid_sweep_is_interpolated_in_two_dimensions() -> None:
    """A profile with a 'grid' sweep: exact at grid cells, the per-step rule outside the grid's hull."""
    base = load_profile("swing-a100/llama2-7b")
    model = build_cost_model(base)
    m, n = np.meshgrid([100.0, 400.0], [100.0, 400.0], indexing="ij")
    truth = 1.1 * model.runtime_s(m, n).ravel()  # a grid that disagrees with the sweeps by 10%
    grid = pd.DataFrame(
        {
            "sweep": "grid",
            "input_tokens": m.ravel(),
            "output_tokens": n.ravel(),
            "n_trials": 3,
            "runtime_s_mean": truth,
            "runtime_s_std": 0.0,
            "cpu_energy_j_mean": 1.0,
            "cpu_energy_j_std": 0.0,
            "gpu_energy_j_mean": 1.0,
            "gpu_energy_j_std": 0.0,
            "energy_j_mean": 2.0,
            "energy_j_std": 0.0,
        }
    )
    gridded = build_cost_model(
        Profile("gridded", base.metadata, pd.concat([base.points, grid], ignore_index=True))
    )
    np.testing.assert_allclose(gridded.runtime_s(m.ravel(), n.ravel()), truth)
    assert min(truth) < gridded.runtime_s(200, 200) < max(truth)
    assert gridded.runtime_s(2117, 4096) == pytest.approx(model.runtime_s(2117, 4096))


@pytest.mark.parametrize("name", ["m1-pro/llama2-7b", "m1-pro/mistral-7b", "palmetto-v100/mistral-7b"])
def test_extrapolated_component_energies_are_never_negative(name: str) -> None:
    """m1-pro/llama2-7b's GPU curve continued below 8 input tokens fell to -0.61 J at (6, 2); each component,
    not only the total, stays at or above 0 J."""
    model = build_cost_model(load_profile(name), "interpolated", "extrapolate")
    m, n = np.meshgrid(np.arange(1.0, 3000.0, 13.0), np.arange(1.0, 3000.0, 13.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cpu, gpu, total = model.cpu_energy_j(m, n), model.gpu_energy_j(m, n), model.energy_j(m, n)
    assert (cpu >= 0).all() and (gpu >= 0).all()
    assert np.array_equal(total, cpu + gpu)
    assert model.gpu_energy_j(6, 2) >= 0
