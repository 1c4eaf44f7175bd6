"""What a serving sweep measures: prefill passes and decode iterations over batch sizes, in a seeded order.

A batching engine (vLLM, TGI) runs two kinds of forward pass: a *prefill* over newly admitted prompts and a
*decode iteration* that adds one token to every running request. A serving sweep measures both on this
machine, KV cache on, the way `plan.py` measures whole requests:

* a **setting** is (table, batch size, tokens per request): a prefill pass of `batch` prompts of that
  length, or a decode iteration of `batch` requests each holding that many KV tokens;
* settings run in a seeded random order, so that slow drift of the machine (heat, clocks) does not look
  like a trend in batch size or length;
* a **trial** repeats the same pass back to back until at least `min_window_s` has passed (at least once)
  inside one meter window, and reports time and energy per pass: a decode iteration lasts milliseconds,
  far below what an energy counter resolves (NVML updates every ~20-100 ms), so one window per pass would
  measure the counter, not the pass;
* a setting is done when the 95% Student-t confidence half-width of its warm per-pass times is at most
  `ci_relative` of their mean (the paper's repeat-until-95%-CI rule, relative because passes range from
  microseconds to seconds), after `min_trials`, or at `max_trials`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hybridsim.core.errors import HybridsimError

from .stopping import ci_halfwidth

TABLES = ("prefill", "decode")
BATCH_SIZES: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
PROMPT_LENGTHS: tuple[int, ...] = (128, 512, 2048)
CONTEXT_LENGTHS: tuple[int, ...] = (128, 512, 2048)


@dataclass(frozen=True)
class ServingSetting:
    """One pass to measure: `batch_size` requests of `tokens_per_request` tokens, prefilled or decoded."""

    table: str
    batch_size: int
    tokens_per_request: int

    @property
    def key(self) -> tuple[str, int, int]:
        return (self.table, self.batch_size, self.tokens_per_request)

    @property
    def total_tokens(self) -> int:
        """The table's token key: the batch's prompt tokens (prefill) or KV tokens (decode)."""
        return self.batch_size * self.tokens_per_request

    def label(self) -> str:
        return f"{self.table} b={self.batch_size} x {self.tokens_per_request}"


@dataclass(frozen=True)
class ServingConfig:
    """Which passes, how often each, for how long."""

    batch_sizes: tuple[int, ...] = BATCH_SIZES
    prompt_lengths: tuple[int, ...] = PROMPT_LENGTHS
    context_lengths: tuple[int, ...] = CONTEXT_LENGTHS
    ci_relative: float = 0.05
    confidence: float = 0.95
    min_trials: int = 3
    max_trials: int = 15
    warmup: int = 1
    min_window_s: float = 0.5
    seed: int = 0
    time_budget_s: float | None = None

    def validate(self) -> None:
        for name, values in (
            ("--batch-sizes", self.batch_sizes),
            ("--prompt-lengths", self.prompt_lengths),
            ("--context-lengths", self.context_lengths),
        ):
            if not values or any(v < 1 for v in values):
                raise HybridsimError(f"{name}: need one or more positive whole numbers, got {list(values)}")
        if not 1 <= self.min_trials <= self.max_trials:
            raise HybridsimError(
                f"--min-trials/--max-trials: need 1 <= min <= max, got {self.min_trials}, {self.max_trials}"
            )
        if self.warmup < 0:
            raise HybridsimError(f"--warmup: must be >= 0, got {self.warmup}")
        if not 0 < self.ci_relative < 1:
            raise HybridsimError(f"--ci-relative: must be between 0 and 1, got {self.ci_relative}")
        if self.min_window_s < 0:
            raise HybridsimError(f"--min-window-s: must be >= 0, got {self.min_window_s}")
        if self.time_budget_s is not None and self.time_budget_s <= 0:
            raise HybridsimError(f"--time-budget-s: must be > 0, got {self.time_budget_s}")


def plan_serving(config: ServingConfig) -> list[ServingSetting]:
    """Every setting of the sweep, each once, in the seeded random order the run visits them."""
    config.validate()
    settings = [
        ServingSetting(table, batch, length)
        for table, lengths in (("prefill", config.prompt_lengths), ("decode", config.context_lengths))
        for batch in sorted(set(config.batch_sizes))
        for length in sorted(set(lengths))
    ]
    order = np.random.default_rng(config.seed).permutation(len(settings))
    return [settings[i] for i in order]


def is_converged(times: Sequence[float], config: ServingConfig) -> bool:
    """Enough warm trials and a tight enough CI of the mean per-pass time (relative), or the trial cap."""
    if len(times) >= config.max_trials:
        return True
    if len(times) < config.min_trials:
        return False
    return ci_halfwidth(times, config.confidence) <= config.ci_relative * float(np.mean(times))
