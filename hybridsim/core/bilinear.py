"""The paper's bilinear cost model, fitted by least squares: one fit for calibration and for the importer.

Wilkins et al. (§5.1) model energy and runtime per request as y = c0*m + c1*n + c2*m*n (m input, n output
tokens) with no intercept, fitted by ordinary least squares. Calibration fits it to its own trials
(`calibration/fitting.py`), the importer of the paper's raw data refits the published coefficients
(`simulator/profiles/wilkins2024.py`); both use this function, so that the two cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PAPER_TERMS = ("m", "n", "m*n")


@dataclass(frozen=True)
class LeastSquaresFit:
    """Coefficients of y ~ terms, with the fit's quality."""

    terms: tuple[str, ...]
    coefficients: tuple[float, ...]
    r2: float | None
    r2_kind: str
    """'uncentred' (no intercept) or 'centred'."""
    n_observations: int
    n_settings: int


def fit_bilinear(
    m: np.ndarray, n: np.ndarray, y: np.ndarray, intercept: bool = False
) -> LeastSquaresFit | None:
    """Least squares of y on (m, n, m*n) [+ 1]; None when the settings cannot determine every coefficient."""
    m, n, y = (np.asarray(v, dtype=float) for v in (m, n, y))
    keep = np.isfinite(m) & np.isfinite(n) & np.isfinite(y)
    m, n, y = m[keep], n[keep], y[keep]
    columns = [m, n, m * n] + ([np.ones_like(m)] if intercept else [])
    design = np.column_stack(columns) if m.size else np.empty((0, len(columns)))
    n_settings = len(set(zip(m.tolist(), n.tolist(), strict=True)))
    if m.size < design.shape[1] or n_settings < design.shape[1]:
        return None
    scale = np.abs(design).max(axis=0)
    scale[scale == 0] = 1.0
    solution, _, rank, _ = np.linalg.lstsq(design / scale, y, rcond=None)
    if rank < design.shape[1]:
        return None
    coefficients = solution / scale
    residual = float(np.sum((y - design @ coefficients) ** 2))
    total = float(np.sum((y - y.mean()) ** 2)) if intercept else float(np.sum(y**2))
    r2 = 1.0 - residual / total if total > 0 else None
    terms = PAPER_TERMS + (("1",) if intercept else ())
    return LeastSquaresFit(
        terms=terms,
        coefficients=tuple(float(c) for c in coefficients),
        r2=r2,
        r2_kind="centred" if intercept else "uncentred",
        n_observations=int(m.size),
        n_settings=n_settings,
    )
