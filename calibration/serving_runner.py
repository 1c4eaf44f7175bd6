"""Driving one forward pass the way a batching engine does: a prefill of a batch, or one decode iteration.

`runner.py` times whole requests through `generate`. A batching engine never calls `generate`: it runs a
forward pass per iteration over the requests it holds, with their KV cache. This runner does the same with
the model `runner.py` builds (bundled architecture or local weights, target device and dtype):

* **prefill pass**: `batch` prompts of m synthetic tokens in, an empty KV cache filled, logits of the last
  position only (what an engine samples from);
* **decode iteration**: `batch` requests each already holding c KV tokens (prefilled outside the meter
  window, not timed), one new token each; the cache is cut back to c after every repetition, so each
  repetition sees exactly the context it is keyed on.

A trial repeats its pass back to back inside one meter window until `min_window_s` has passed and reports
time and energy *per pass* (`serving_plan.py` says why). Out-of-memory anywhere in a trial raises
`OutOfMemory` (the protocol records it); a hard deadline is checked between passes (`BudgetExhausted`).
"""

from __future__ import annotations

import contextlib
import inspect
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .meters.common import EnergyMeter, Measurement
from .runner import BudgetExhausted, OutOfMemory, RunnerConfig, TransformersRunner, is_out_of_memory
from .serving_plan import ServingSetting

MAX_REPEATS = 10_000
"""A trial's repetitions stop here even if `min_window_s` has not passed (a pass of microseconds)."""


@dataclass(frozen=True)
class PassResult:
    """One trial: `repeats` identical passes in one meter window, reported per pass."""

    time_s: float
    """Wall time of one pass (the window's time over `repeats`), device synchronised."""
    cpu_energy_j: float
    gpu_energy_j: float
    """Energy of one pass within the meter's scope, idle draw included (gross where the meter subtracts)."""
    repeats: int
    measurement: Measurement
    """The whole window, as the meter reported it."""
    peak_memory_mb: float | None


class ServingRunner:
    """Prefill passes and decode iterations of one model on one device (module docstring)."""

    def __init__(self, config: RunnerConfig, min_window_s: float) -> None:
        self.base = TransformersRunner(RunnerConfig(**{**vars(config), "batch_size": 1, "kv_cache": True}))
        self.model, self.torch = self.base.model, self.base._torch
        self.min_window_s = min_window_s
        self.deadline: float | None = None
        parameters = inspect.signature(self.model.forward).parameters
        self.cache_keyword = "cache" if "cache" in parameters else "past_key_values"
        self.last_only = next(
            ({name: 1} for name in ("logits_to_keep", "num_logits_to_keep") if name in parameters), {}
        )

    def describe(self) -> dict[str, Any]:
        return {**self.base.describe(), "batch_size": "per setting", "passes": "prefill and decode"}

    def ids(self, batch: int, length: int, salt: int) -> Any:
        """`batch` rows of `length` synthetic token ids (seeded; no special ids), on the device."""
        rng = np.random.default_rng([self.base.config.seed, batch, length, salt])
        low = min(1000, self.base.vocab_size // 4)
        special = np.asarray(sorted(self.base.special_ids), dtype=np.int64)
        candidates = np.setdiff1d(np.arange(low, self.base.vocab_size), special)
        values = rng.choice(candidates, size=(batch, length))
        return self.torch.as_tensor(values, dtype=self.torch.long, device=self.base.device)

    def _forward(self, ids: Any, cache: Any) -> Any:
        return self.model(input_ids=ids, use_cache=True, **{self.cache_keyword: cache}, **self.last_only)

    def run_trial(self, setting: ServingSetting, meter: EnergyMeter) -> PassResult:
        """Measure one trial of `setting`: repeated passes in one window, reported per pass."""
        from transformers import DynamicCache

        torch = self.torch
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise BudgetExhausted("the time budget ran out before the trial started")
        batch, length = setting.batch_size, setting.tokens_per_request
        self.base._reset_peak_memory()
        window_open, oom = False, None
        try:
            with torch.inference_mode():
                if setting.table == "prefill":
                    prompt = self.ids(batch, length, 0)

                    def one_pass() -> None:
                        self._forward(prompt, DynamicCache())

                else:
                    cache = DynamicCache()
                    self._forward(self.ids(batch, length, 0), cache)
                    token = self.ids(batch, 1, 1)

                    def one_pass() -> None:
                        self._forward(token, cache)
                        cache.crop(-(cache.get_seq_length() - length))

                self.base.synchronize()
                meter.begin_window()
                window_open = True
                started = time.perf_counter()
                repeats = 0
                while True:
                    one_pass()
                    self.base.synchronize()
                    repeats += 1
                    elapsed = time.perf_counter() - started
                    if elapsed >= self.min_window_s or repeats >= MAX_REPEATS:
                        break
                    if self.deadline is not None and time.monotonic() >= self.deadline:
                        raise BudgetExhausted(
                            "the time budget ran out during a trial; the trial was discarded"
                        )
                window_open = False
                measurement = meter.end_window()
        except BaseException as error:
            if window_open:
                with contextlib.suppress(Exception):
                    meter.end_window()
            if not is_out_of_memory(error):
                raise
            text = str(error).strip()
            oom = text.splitlines()[0] if text else "out of memory"
        if oom is not None:
            self.base.free_memory()
            raise OutOfMemory(oom)
        gross = measurement.gross_energy_j or measurement.energy_j
        by_side = {
            side: sum(v for k, v in gross.items() if k.split(":")[0] in prefixes)
            for side, prefixes in (("cpu", ("cpu", "dram")), ("gpu", ("gpu",)))
        }
        return PassResult(
            time_s=elapsed / repeats,
            cpu_energy_j=by_side["cpu"] / repeats,
            gpu_energy_j=by_side["gpu"] / repeats,
            repeats=repeats,
            measurement=measurement,
            peak_memory_mb=self.base._peak_memory_mb(),
        )

    def weights_bytes(self) -> int:
        return int(sum(p.numel() * p.element_size() for p in self.model.parameters()))

    def kv_bytes_per_token(self) -> int:
        """K and V of every layer for one token: 2 x layers x KV heads x head size x bytes per value."""
        config = self.model.config
        heads = int(config.num_attention_heads)
        kv_heads = int(getattr(config, "num_key_value_heads", None) or heads)
        if getattr(config, "multi_query", False) and not getattr(config, "new_decoder_architecture", False):
            kv_heads = 1  # Falcon-7B's multi-query attention
        head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // heads)
        element = self.torch.tensor([], dtype=self.base.dtype).element_size()
        return 2 * int(config.num_hidden_layers) * kv_heads * head_dim * element

    def device_memory_bytes(self) -> int | None:
        """Memory of the device the model runs on (CUDA: the GPU's; CPU: the host's RAM), if known."""
        torch = self.torch
        if self.base.device.type == "cuda":
            return int(torch.cuda.get_device_properties(self.base.device).total_memory)
        with contextlib.suppress(ValueError, OSError, AttributeError):
            import os

            return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
        return None

    def close(self) -> None:
        self.base.close()
