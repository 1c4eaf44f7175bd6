"""How long will a trial take? Estimates that let a calibration stop cleanly before a time budget runs out.

A GPU host rented by the hour, or a batch job with a wall-clock limit, must not be killed half-way through
a trial: the protocol asks this estimator, before each setting and each trial, whether what it is about
to start fits in the time left, and defers what does not to a later `--resume`.
"""

from __future__ import annotations

import math


class RuntimeEstimator:
    """Guesses how long a trial of a setting will take, from the trials measured so far.

    Work grows like n*(m + n/2) without a KV cache (each of the n steps re-reads the whole sequence) and
    like m + n with one, but a decoding step costs far more than a prompt token, so runtime grows at least
    in proportion to n too. A setting is estimated from each measured one as its runtime times the larger
    of the two growth ratios (at least 1), and the smallest such bound is kept: exact at a measured
    setting, long by little between neighbouring powers of two, long by much across a wide gap, which is
    the safe side for a budget (what is deferred gets a better estimate once its neighbours are measured).

    The first trial at new lengths is slower (new shapes: kernel selection, allocator growth; 1.5-5x on
    an H100 with HF eager decoding), so a warm-up is a steady trial times the factor seen at the closest
    setting where both were measured (3x before any was).
    """

    DEFAULT_WARMUP_FACTOR = 3.0

    def __init__(self, kv_cache: bool) -> None:
        self.kv_cache = kv_cache
        self.steady: dict[tuple[int, int], float] = {}
        """Longest warm (measured) trial per (m, n)."""
        self.first: dict[tuple[int, int], float] = {}
        """Longest warm-up trial per (m, n)."""

    @property
    def measured(self) -> bool:
        return bool(self.steady or self.first)

    def work(self, m: int, n: int) -> float:
        return float(m + n) if self.kv_cache else float(n * (m + n / 2))

    def growth(self, source: tuple[int, int], target: tuple[int, int]) -> float:
        """How many times longer `target` may take than `source` (>= 1)."""
        return max(1.0, target[1] / source[1], self.work(*target) / self.work(*source))

    def record(self, key: tuple[int, int], runtime_s: float, warmup: bool = False) -> None:
        table = self.first if warmup else self.steady
        table[key] = max(runtime_s, table.get(key, 0.0))

    def trial_s(self, key: tuple[int, int]) -> float | None:
        """Estimated seconds for one warm trial of `key`; None before anything was measured."""
        known = self.steady or self.first
        if key in known:
            return known[key]
        if not known:
            return None
        return min(runtime * self.growth(source, key) for source, runtime in known.items())

    def warmup_s(self, key: tuple[int, int]) -> float | None:
        """Estimated seconds for a warm-up trial of `key`."""
        if key in self.first:
            return self.first[key]
        steady = self.trial_s(key)
        if steady is None:
            return None
        if not self.steady:
            return steady  # only warm-ups measured so far: `steady` is already a warm-up figure
        both = [k for k in self.first if k in self.steady]
        if not both:
            return steady * self.DEFAULT_WARMUP_FACTOR
        closest = min(both, key=lambda k: abs(math.log(self.work(*k) / self.work(*key))))
        return steady * max(1.0, self.first[closest] / self.steady[closest])

    def visit_s(self, key: tuple[int, int], warmups: int, trials: int) -> float | None:
        """Estimated seconds for `warmups` warm-up and `trials` warm trials of `key`."""
        steady, first = self.trial_s(key), self.warmup_s(key)
        if steady is None or first is None:
            return None
        return warmups * first + trials * steady
