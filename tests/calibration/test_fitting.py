"""The paper's bilinear fit: exact on bilinear data, honest about what two 1-D sweeps cannot determine."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hybridsim.calibration.fitting import fit_bilinear, fit_report, paper_fit


def grid_trials(
    energy: tuple[float, float, float],
    runtime: tuple[float, float, float],
    intercept: float = 0.0,
    tokens: tuple[int, ...] = (8, 32, 128, 512),
) -> pd.DataFrame:
    rows = []
    for m in tokens:
        for n in tokens:
            for warmup in (True, False, False):
                rows.append(
                    {
                        "sweep": "grid",
                        "input_tokens": m,
                        "output_tokens": n,
                        "warmup": warmup,
                        "status": "ok",
                        "energy_j": energy[0] * m
                        + energy[1] * n
                        + energy[2] * m * n
                        + intercept
                        + (1e6 if warmup else 0.0),  # a warm-up that would wreck the fit if it counted
                        "runtime_s": runtime[0] * m + runtime[1] * n + runtime[2] * m * n,
                    }
                )
    return pd.DataFrame(rows)


def test_paper_form_recovers_known_coefficients_from_a_grid() -> None:
    # The Swing A100 Llama-2 7B coefficients of the paper (reference README §5).
    energy, runtime = (-3.894991, 31.522735, 0.042712), (-0.010021, 0.083515, 0.000107)
    fit = paper_fit(grid_trials(energy, runtime), energy_scope="GPU only", source="test")
    assert fit is not None
    np.testing.assert_allclose(fit.energy_coefficients, energy, rtol=1e-9)
    np.testing.assert_allclose(fit.runtime_coefficients, runtime, rtol=1e-9)
    assert fit.r2_energy == pytest.approx(1.0) and fit.r2_runtime == pytest.approx(1.0)


def test_intercept_fit_finds_a_fixed_per_request_cost() -> None:
    report = fit_report(grid_trials((1.0, 2.0, 0.01), (0.1, 0.2, 0.001), intercept=50.0))
    with_intercept = report["energy_j_with_intercept"]
    np.testing.assert_allclose(with_intercept["coefficients"], (1.0, 2.0, 0.01, 50.0), rtol=1e-9)
    assert with_intercept["r2_kind"] == "centred" and report["energy_j_no_intercept"]["r2"] < 1.0
    assert "caveat" not in report  # a grid was measured


def test_fit_is_refused_when_the_settings_cannot_determine_it() -> None:
    # One sweep only: m*n is proportional to m, so the three coefficients are not identifiable.
    m, n = np.array([8.0, 16.0, 32.0, 64.0]), np.full(4, 32.0)
    assert fit_bilinear(m, n, 3 * m + 5) is None
    assert fit_bilinear(m[:2], n[:2], m[:2]) is None


def test_two_sweeps_fit_carries_the_caveat() -> None:
    rows = [{"sweep": "input", "input_tokens": m, "output_tokens": 32} for m in (8, 16, 64)]
    rows += [{"sweep": "output", "input_tokens": 32, "output_tokens": n} for n in (8, 16, 64)]
    rows += [{"sweep": "input+output", "input_tokens": 32, "output_tokens": 32}]
    trials = pd.DataFrame(rows).assign(warmup=False, status="ok")
    trials["runtime_s"] = 0.01 * trials["input_tokens"] + 0.1 * trials["output_tokens"]
    trials["energy_j"] = 100 * trials["runtime_s"]
    report = fit_report(trials)
    assert report["sweeps"] == ["input", "output"] and "caveat" in report
    np.testing.assert_allclose(report["runtime_s_no_intercept"]["coefficients"], (0.01, 0.1, 0.0), atol=1e-12)
