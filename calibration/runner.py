"""Driving an LLM at exact token counts: m tokens in, exactly n tokens out, timed and metered.

The paper fed prompts whose length depended on the tokenizer (prompt C was 38 Llama tokens, 33 Mistral
ones) and let generation stop anywhere between 90% and 100% of the limit. Here the prompt is m synthetic
token ids (seeded, no special ids) and generation is pinned to n tokens (`min_new_tokens = max_new_tokens
= n`, end-of-sequence ignored), so the cost of (m, n) is the cost of exactly m and n. Decoding is greedy:
sampling would change which tokens come out, not how many, and costs the same.

A model comes from a local path or hub id (`from_pretrained`, offline unless asked) or from a bundled
architecture (`archs/`), randomly initialised directly on the target device in the target dtype so that
a 7B model appears on a GPU in seconds, without weights or network.

torch and transformers come from the optional `calibrate` extra and are imported when a runner is built.
"""

from __future__ import annotations

import contextlib
import gc
import re
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from hybridsim.core.errors import HybridsimError

from .meters.common import EnergyMeter, Measurement

DTYPES = ("float32", "float16", "bfloat16")


class OutOfMemory(Exception):
    """The accelerator (or host) ran out of memory during one trial; the caller records it and goes on."""


class BudgetExhausted(Exception):
    """The run's hard deadline passed during a trial; the trial was abandoned between two decoding steps."""


@dataclass(frozen=True)
class TrialResult:
    """One request (or one batch of identical-length requests), measured."""

    runtime_s: float
    """Wall time from just before generation to after the device finished (synchronised)."""
    measurement: Measurement
    input_tokens: int
    """Prompt length actually fed to the model (per row)."""
    output_tokens: int
    """Tokens actually generated (per row)."""
    batch_size: int
    peak_memory_mb: float | None
    """Peak allocated accelerator memory during the trial (CUDA), allocated memory after it (MPS), or the
    process's peak resident set (CPU)."""


class Runner(Protocol):
    """What the protocol needs from a runner; tests substitute fakes."""

    def run_trial(self, input_tokens: int, output_tokens: int, meter: EnergyMeter) -> TrialResult: ...

    def describe(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class RunnerConfig:
    """Which model, where, and how it generates."""

    model: str | None = None
    """Local directory or hub id for `from_pretrained`."""
    arch: str | None = None
    """Bundled architecture name (`archs/NAME.json`), randomly initialised."""
    dtype: str = "bfloat16"
    device: str = "cpu"
    batch_size: int = 1
    kv_cache: bool = True
    seed: int = 0
    allow_download: bool = False
    """Let `from_pretrained` reach the hub; off by default so that a run never waits on the network."""

    def validate(self) -> None:
        if (self.model is None) == (self.arch is None):
            raise HybridsimError("calibrate: give exactly one of --model PATH_OR_ID and --arch NAME")
        if self.allow_download and self.model is None:
            raise HybridsimError(
                "--allow-download: only --model fetches from the hub; --arch builds a random model, "
                "nothing is downloaded"
            )
        if self.dtype not in DTYPES:
            raise HybridsimError(f"--dtype: {self.dtype!r} is not one of {', '.join(DTYPES)}")
        if self.batch_size < 1:
            raise HybridsimError(f"--batch-size: must be >= 1, got {self.batch_size}")
        if not (self.device in ("cpu", "cuda", "mps") or re.fullmatch(r"cuda:\d+", self.device)):
            raise HybridsimError(f"--device: {self.device!r} is not cpu, cuda, cuda:N or mps")
        if self.model is not None and _looks_like_path(self.model) and not Path(self.model).is_dir():
            raise HybridsimError(
                f"--model {self.model}: not a local model directory (a hub id looks like 'org/name')"
            )


def _looks_like_path(model: str) -> bool:
    """A local path rather than a hub id: hub ids never start with '/' or '.'."""
    return model.startswith(("/", ".")) or Path(model).exists()


def check_device(device: str) -> None:
    """Raise a one-line `HybridsimError` unless torch can run on `device` here (CUDA
    present, index valid, MPS).
    """
    import torch

    parsed = torch.device(device)
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise HybridsimError(f"--device {device}: torch {torch.__version__} sees no CUDA device")
        if (parsed.index or 0) >= torch.cuda.device_count():
            raise HybridsimError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s)")
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise HybridsimError("--device mps: this torch build or machine has no MPS (Apple GPU) backend")


def is_out_of_memory(error: BaseException) -> bool:
    """True for torch's CUDA OOM and for the RuntimeErrors that CUDA, MPS and the CPU allocator raise."""
    if type(error).__name__ == "OutOfMemoryError" or isinstance(error, MemoryError):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


class TransformersRunner:
    """A causal LM on one device, generating exactly n tokens from m synthetic ones."""

    def __init__(self, config: RunnerConfig) -> None:
        config.validate()
        import torch

        self.config = config
        self._torch = torch
        self.device = torch.device(config.device)
        check_device(config.device)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device.index or 0)
        self.dtype = getattr(torch, config.dtype)
        started = time.perf_counter()
        self.model, self.model_name = self._load()
        self.deadline: float | None = None
        """`time.monotonic()` after which a trial is abandoned (`BudgetExhausted`) instead of finished."""
        self.load_time_s = time.perf_counter() - started
        self.model.eval()
        # End-of-sequence must never stop a trial early: min_new_tokens already forbids it, and with no
        # eos id generation has no reason to stop before max_new_tokens either.
        self.model.generation_config.eos_token_id = None
        model_config = self.model.config
        self.vocab_size = int(model_config.vocab_size)
        self.special_ids = _special_ids(model_config, self.config.model, self.config.allow_download)

    # ----------------------------------------------------------------------------------------- loading
    def _load(self) -> tuple[Any, str]:
        from transformers import AutoModelForCausalLM

        dtype_kwarg = {_dtype_keyword(): self.dtype}
        if self.config.arch is not None:
            from .archs import load_arch

            arch = load_arch(self.config.arch)
            self._torch.manual_seed(self.config.seed)
            # Parameters are created on the target device in the target dtype: no CPU detour, no fp32 copy.
            with self.device:
                model = AutoModelForCausalLM.from_config(arch.build_config(), **dtype_kwarg)
            return model, arch.display_name
        name = self.config.model
        assert name is not None  # RunnerConfig holds exactly one of model and arch
        try:
            model = AutoModelForCausalLM.from_pretrained(
                name, local_files_only=not self.config.allow_download, **dtype_kwarg
            )
        except (OSError, ValueError) as error:  # no such model, or a directory that holds none
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            from_hub = not (self.config.allow_download or _looks_like_path(name))
            hint = " (offline: pass --allow-download to fetch from the hub)" if from_hub else ""
            raise HybridsimError(f"--model {self.config.model}: cannot load: {first_line}{hint}") from None
        return model.to(self.device), str(self.config.model)

    # ------------------------------------------------------------------------------------------ trials
    def warm_up(self, trials: int = 2) -> float:
        """Untimed, unmetered generations (8 in, 8 out) that take one-time costs out of the first setting:
        lazy CUDA/MPS context, kernel selection, allocator growth, first-call Python overhead. Returns s."""

        class _NoMeter(EnergyMeter):
            name = "none"

            def begin_window(self) -> None:
                pass

            def end_window(self) -> Measurement:
                return Measurement(elapsed_s=0.0, energy_j={}, method="none")

        started = time.perf_counter()
        for _ in range(trials):
            self.run_trial(8, 8, _NoMeter())
        return time.perf_counter() - started

    def input_ids(self, input_tokens: int) -> Any:
        """`batch_size` rows of `input_tokens` synthetic ids, the same for every trial of one length."""
        rng = np.random.default_rng([self.config.seed, input_tokens])
        low = min(1000, self.vocab_size // 4)
        special = np.asarray(sorted(self.special_ids), dtype=np.int64)
        candidates = np.setdiff1d(np.arange(low, self.vocab_size), special)
        ids = rng.choice(candidates, size=(self.config.batch_size, input_tokens))
        return self._torch.as_tensor(ids, dtype=self._torch.long, device=self.device)

    def run_trial(self, input_tokens: int, output_tokens: int, meter: EnergyMeter) -> TrialResult:
        """Generate exactly `output_tokens` after `input_tokens`, inside one meter window."""
        if input_tokens < 1 or output_tokens < 1:
            raise HybridsimError(
                f"calibrate: token counts must be >= 1, got m={input_tokens} n={output_tokens}"
            )
        torch = self._torch
        from transformers import GenerationConfig

        ids = self.input_ids(input_tokens)
        mask = torch.ones_like(ids)
        generation = GenerationConfig(
            max_new_tokens=output_tokens,
            min_new_tokens=output_tokens,
            do_sample=False,
            num_beams=1,
            use_cache=self.config.kv_cache,
            eos_token_id=None,
            pad_token_id=_pad_id(self.model.config),
        )
        extra: dict[str, Any] = {}
        if self.deadline is not None:
            if time.monotonic() >= self.deadline:
                raise BudgetExhausted("the time budget ran out before the trial started")
            extra["stopping_criteria"] = _deadline_criteria(self.deadline)
        self._reset_peak_memory()
        self.synchronize()
        window_open = False
        oom: str | None = None
        try:
            meter.begin_window()
            window_open = True
            started = time.perf_counter()
            with torch.inference_mode():
                output = self.model.generate(
                    input_ids=ids, attention_mask=mask, generation_config=generation, **extra
                )
            self.synchronize()
            runtime = time.perf_counter() - started
            window_open = False
            measurement = meter.end_window()
        except BaseException as error:
            if window_open:
                _close_quietly(meter)
            if not is_out_of_memory(error):
                raise
            text = str(error).strip()
            oom = text.splitlines()[0] if text else "out of memory"
        if oom is not None:
            # Outside the except block, so that the traceback no longer pins the failed step's tensors.
            del ids, mask
            self.free_memory()
            raise OutOfMemory(oom)
        generated = int(output.shape[1]) - input_tokens
        del output
        return TrialResult(
            runtime_s=runtime,
            measurement=measurement,
            input_tokens=int(ids.shape[1]),
            output_tokens=generated,
            batch_size=int(ids.shape[0]),
            peak_memory_mb=self._peak_memory_mb(),
        )

    # -------------------------------------------------------------------------------- device plumbing
    def synchronize(self) -> None:
        """Wait for queued kernels, so that a window closes after the work, not after its launch."""
        torch = self._torch
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        elif self.device.type == "mps":
            torch.mps.synchronize()

    def free_memory(self) -> None:
        gc.collect()
        torch = self._torch
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        elif self.device.type == "mps":
            torch.mps.empty_cache()

    def _reset_peak_memory(self) -> None:
        if self.device.type == "cuda":
            self._torch.cuda.reset_peak_memory_stats(self.device)

    def _peak_memory_mb(self) -> float | None:
        torch = self._torch
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        if self.device.type == "mps":
            return torch.mps.current_allocated_memory() / 2**20
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 2**10

    def describe(self) -> dict[str, Any]:
        """What the profile's metadata records about the model and how it ran."""
        import transformers

        model_config = self.model.config
        return {
            "model": self.model_name,
            "model_source": (
                f"arch:{self.config.arch} (random init)" if self.config.arch else str(self.config.model)
            ),
            "model_type": getattr(model_config, "model_type", None),
            "parameters": int(sum(p.numel() for p in self.model.parameters())),
            "attn_implementation": getattr(model_config, "_attn_implementation", None),
            "dtype": self.config.dtype,
            "device": str(self.device),
            "batch_size": self.config.batch_size,
            "kv_cache": self.config.kv_cache,
            "decoding": "greedy, exactly n new tokens, EOS ignored",
            "load_time_s": round(self.load_time_s, 3),
            "torch": self._torch.__version__,
            "transformers": transformers.__version__,
        }

    def close(self) -> None:
        del self.model
        self.free_memory()


def _dtype_keyword() -> str:
    """transformers renamed `torch_dtype` to `dtype` in 4.56; older releases only know the old name."""
    import transformers
    from packaging.version import Version

    return "dtype" if Version(transformers.__version__) >= Version("4.56") else "torch_dtype"


def _special_ids(model_config: Any, model: str | None, allow_download: bool) -> set[int]:
    """Token ids a synthetic prompt must avoid: BOS/EOS/PAD from the config and the tokenizer's specials."""
    ids: set[int] = set()
    for attribute in ("bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id"):
        value = getattr(model_config, attribute, None)
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(int(v) for v in value)
    if model is not None:
        try:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(model, local_files_only=not allow_download)
            ids.update(int(i) for i in tokenizer.all_special_ids)
        except Exception:  # noqa: BLE001 - a model without a tokenizer still runs on synthetic ids
            pass
    return ids


def _pad_id(model_config: Any) -> int:
    for attribute in ("pad_token_id", "eos_token_id", "bos_token_id"):
        value = getattr(model_config, attribute, None)
        if isinstance(value, int):
            return value
        if isinstance(value, (list, tuple)) and value:
            return int(value[0])
    return 0


def _deadline_criteria(deadline: float) -> Any:
    """A stopping criterion that never stops generation but raises `BudgetExhausted` past `deadline`.

    Checked by `generate` after every decoding step, so a run stops within one step of its deadline
    without signals (which could land in the middle of a write to trials.csv).
    """
    from transformers import StoppingCriteria, StoppingCriteriaList

    class _Deadline(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> bool:
            if time.monotonic() >= deadline:
                raise BudgetExhausted("the time budget ran out during a trial; the trial was discarded")
            return False  # `is_done | False` (transformers >= 4.39) and `any(...)` (older) both accept it

    return StoppingCriteriaList([_Deadline()])


def _close_quietly(meter: EnergyMeter) -> None:
    """Close an open window after a failed trial; its reading is discarded."""
    with contextlib.suppress(Exception):  # the trial's own error is what the user needs to see
        meter.end_window()
