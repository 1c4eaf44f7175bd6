"""Fitting the paper's bilinear cost model to calibration trials.

The paper (§5.1, thesis Table 5.2) models energy and runtime per request as
    E(m, n) = a0*m + a1*n + a2*m*n        R(m, n) = b0*m + b1*n + b2*m*n
with no intercept, fitted by ordinary least squares over every trial of a 2-D grid. We fit the same form
so that a calibrated profile can be compared coefficient by coefficient with the published ones, and store
it as the profile's `paper_fit`. Two caveats travel with it:

* From the two 1-D sweeps alone (no grid) the interaction term is pinned by a single crossing point, and
  the no-cache output sweep is quadratic in n; the fit can then be far off, even unphysical (the reference
  notes a0 = -781 for Swing Llama). Calibrate with `--grid` when the fit matters; the simulator's default
  'interpolated' cost model does not use it.
* R^2 of the no-intercept fit is the *uncentred* one (1 - SSR / sum y^2), as statsmodels reports for a
  model without a constant and as the paper quoted; it reads higher than a centred R^2.

A fit with an intercept (fixed per-request cost) is computed as well and kept in the metadata's extra.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import pandas as pd

from hybridsim.core.bilinear import PAPER_TERMS, LeastSquaresFit, fit_bilinear
from hybridsim.core.profile_model import BilinearFit

__all__ = [
    "PAPER_TERMS",
    "LeastSquaresFit",
    "fit_bilinear",
    "fit_report",
    "is_true",
    "paper_fit",
    "warm_trials",
]


def is_true(values: pd.Series) -> pd.Series:
    """A yes/no column of trials.csv (True/False as written, 1/0 as some tools write it) as booleans."""
    return values.astype(str).str.lower().isin(("true", "1"))


def warm_trials(trials: pd.DataFrame) -> pd.DataFrame:
    """Trials that count: status 'ok' and not warm-up."""
    if trials.empty:
        return trials
    status = (
        trials["status"].fillna("ok").astype(str) if "status" in trials else pd.Series("ok", trials.index)
    )
    warmup = is_true(trials["warmup"]) if "warmup" in trials else False
    return trials[(status == "ok") & ~warmup]


def paper_fit(trials: pd.DataFrame, energy_scope: str, source: str) -> BilinearFit | None:
    """The paper-form fit of energy (CPU + GPU, J) and runtime (s) over warm
    trials; None if underdetermined.
    """
    warm = warm_trials(trials)
    if warm.empty:
        return None
    m, n = warm["input_tokens"].to_numpy(float), warm["output_tokens"].to_numpy(float)
    energy = fit_bilinear(m, n, warm["energy_j"].to_numpy(float))
    runtime = fit_bilinear(m, n, warm["runtime_s"].to_numpy(float))
    if energy is None or runtime is None:
        return None
    (a0, a1, a2), (b0, b1, b2) = energy.coefficients, runtime.coefficients
    return BilinearFit(
        energy_coefficients=(a0, a1, a2),
        runtime_coefficients=(b0, b1, b2),
        energy_scope=energy_scope,
        source=source,
        r2_energy=energy.r2,
        r2_runtime=runtime.r2,
    )


def fit_report(trials: pd.DataFrame) -> dict[str, Any]:
    """Both fits (paper form and with intercept) of energy and runtime, for the profile's metadata extra."""
    warm = warm_trials(trials)
    report: dict[str, Any] = {
        "form": "y = c0*m + c1*n + c2*m*n [+ c3]; m = input tokens, n = output tokens; over warm trials",
        "sweeps": sorted({part for value in warm["sweep"].astype(str).unique() for part in value.split("+")})
        if not warm.empty
        else [],
    }
    if warm.empty:
        return report
    m, n = warm["input_tokens"].to_numpy(float), warm["output_tokens"].to_numpy(float)
    for target, column in (("energy_j", "energy_j"), ("runtime_s", "runtime_s")):
        for label, intercept in (("no_intercept", False), ("with_intercept", True)):
            fit = fit_bilinear(m, n, warm[column].to_numpy(float), intercept=intercept)
            report[f"{target}_{label}"] = asdict(fit) if fit is not None else None
    if "grid" not in report["sweeps"]:
        report["caveat"] = (
            "fitted to 1-D sweeps only: the m*n term rests on the one shared point; "
            "calibrate with --grid for a fit worth comparing with the paper's"
        )
    return report
