"""What a calibration measures: the settings of the paper's sweeps (§5.2), their order, and when one is done.

A *setting* is one (input tokens m, output tokens n) pair. The input sweep varies m (8 ... 2048) at n = 32,
the output sweep varies n (8 ... 4096) at m = 32; both contain the anchor (32, 32), which is measured once
and belongs to both (its trials say `sweep = input+output`). An optional grid adds every m x n pair.
Settings run in a seeded random order, so slow drift of the machine (heat, clocks) does not masquerade as
a trend in m or n. A setting is done when the 95% Student-t confidence half-width of its warm runtimes is
at most `ci_halfwidth_s` (after at least `min_trials`) or `max_trials` warm trials were taken.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hybridsim.core.errors import HybridsimError

from .stopping import ci_halfwidth

INPUT_SWEEP: tuple[int, ...] = tuple(2**k for k in range(3, 12))  # 8 ... 2048
OUTPUT_SWEEP: tuple[int, ...] = tuple(2**k for k in range(3, 13))  # 8 ... 4096


@dataclass(frozen=True)
class Setting:
    """One (m, n) pair and the sweeps it belongs to, e.g. 'input', 'output', 'input+output', 'grid'."""

    sweep: str
    input_tokens: int
    output_tokens: int

    @property
    def key(self) -> tuple[int, int]:
        return (self.input_tokens, self.output_tokens)

    def label(self) -> str:
        return f"{self.sweep} m={self.input_tokens} n={self.output_tokens}"


@dataclass(frozen=True)
class ProtocolConfig:
    """How many settings, in what order, how often each, and how long in all."""

    input_tokens: tuple[int, ...] = INPUT_SWEEP
    output_tokens: tuple[int, ...] = OUTPUT_SWEEP
    fixed_output: int = 32
    """Output tokens of the input sweep."""
    fixed_input: int = 32
    """Input tokens of the output sweep."""
    grid: bool = False
    ci_halfwidth_s: float = 0.5
    confidence: float = 0.95
    min_trials: int = 3
    max_trials: int = 25
    warmup: int = 1
    seed: int = 0
    time_budget_s: float | None = None
    skip_larger_after_oom: bool = True

    def validate(self) -> None:
        for name, values in (("--input-tokens", self.input_tokens), ("--output-tokens", self.output_tokens)):
            if not values or any(v < 1 for v in values):
                raise HybridsimError(f"{name}: need one or more positive token counts, got {list(values)}")
        if self.fixed_input < 1 or self.fixed_output < 1:
            raise HybridsimError(
                f"--fixed-input/--fixed-output: must be >= 1, got {self.fixed_input}, {self.fixed_output}"
            )
        if not 1 <= self.min_trials <= self.max_trials:
            raise HybridsimError(
                f"--min-trials/--max-trials: need 1 <= min <= max, got {self.min_trials}, {self.max_trials}"
            )
        if self.warmup < 0:
            raise HybridsimError(f"--warmup: must be >= 0, got {self.warmup}")
        if self.ci_halfwidth_s <= 0:
            raise HybridsimError(f"--ci-halfwidth: must be > 0, got {self.ci_halfwidth_s}")
        if self.time_budget_s is not None and self.time_budget_s <= 0:
            raise HybridsimError(f"--time-budget-s: must be > 0, got {self.time_budget_s}")


def plan_settings(config: ProtocolConfig) -> list[Setting]:
    """Every setting of the run, each (m, n) once, in the seeded random order the run visits them.

    The anchor lengths are added to the sweeps if missing, so that the input and output sweeps always
    share the point (fixed_input, fixed_output) that the interpolated cost model joins them at.
    """
    config.validate()
    inputs = sorted(set(config.input_tokens) | {config.fixed_input})
    outputs = sorted(set(config.output_tokens) | {config.fixed_output})
    sweeps: dict[tuple[int, int], list[str]] = {}
    for m in inputs:
        sweeps.setdefault((m, config.fixed_output), []).append("input")
    for n in outputs:
        sweeps.setdefault((config.fixed_input, n), []).append("output")
    if config.grid:
        for m in inputs:
            for n in outputs:
                sweeps.setdefault((m, n), []).append("grid")
    settings = [Setting("+".join(names), m, n) for (m, n), names in sorted(sweeps.items())]
    order = np.random.default_rng(config.seed).permutation(len(settings))
    return [settings[i] for i in order]


def is_converged(runtimes: Sequence[float], config: ProtocolConfig) -> bool:
    """The paper's stopping rule: enough warm trials and a tight enough runtime CI, or the trial cap."""
    if len(runtimes) >= config.max_trials:
        return True
    if len(runtimes) < config.min_trials:
        return False
    return ci_halfwidth(runtimes, config.confidence) <= config.ci_halfwidth_s
