"""The paper's stopping rule: repeat a setting until the mean runtime is known to within a half-width.

After k warm trials with runtimes r_1..r_k, the 95% confidence interval of the mean runtime has half-width
t(0.975, k-1) * s / sqrt(k) (Student t, s the sample standard deviation). The paper stopped once that was
at most 0.5 s after a minimum number of trials, or at a cap. scipy gives t exactly where installed; a
series expansion stands in where it is not (the GPU hosts that run calibrations often lack scipy).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def t_quantile(confidence: float, df: int) -> float:
    """Two-sided Student-t critical value (e.g. 12.71 for 95% and df = 1); scipy is used where present."""
    try:
        from scipy.stats import t as student_t

        return float(student_t.ppf(0.5 + confidence / 2, df))
    except ImportError:
        return _t_quantile_expansion(confidence, df)


def _t_quantile_expansion(confidence: float, df: int) -> float:
    """Hill's (1970) series for the t quantile from the normal one; within 0.1% for
    df >= 3, exact-ish at 1-2.
    """
    from statistics import NormalDist

    p = 0.5 + confidence / 2
    if df == 1:
        return math.tan(math.pi * (p - 0.5))
    if df == 2:
        a = 4 * p * (1 - p)
        return (2 * p - 1) * math.sqrt(2 / a)
    z = NormalDist().inv_cdf(p)
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


def ci_halfwidth(values: Sequence[float], confidence: float = 0.95) -> float:
    """Half-width of the Student-t confidence interval of the mean; infinite with fewer than 2 values."""
    data = np.asarray(values, dtype=float)
    if data.size < 2:
        return math.inf
    return t_quantile(confidence, data.size - 1) * float(data.std(ddof=1)) / math.sqrt(data.size)
