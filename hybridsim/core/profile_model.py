"""What one (system, model) pair costs: the measured points and the metadata that says how they were measured.

A *profile* is a directory that a person can read and `git diff`:

    <name>/profile.json   metadata (system, device, model, dtype, meter, energy scope, provenance, date,
                          idle power, KV cache, batch size, notes) and, if any, published model fits
    <name>/points.csv     one row per measured (sweep, input_tokens, output_tokens) setting, aggregated
    <name>/trials.csv     optional: every trial as measured (calibration appends here as it goes)
    <name>/serving_prefill.csv, serving_decode.csv
                          optional: per-pass costs for batching engines (`ServingTables`), described by the
                          `serving` block of profile.json; a profile with them may omit points.csv
                          (a *serving-only* profile, which prices iterations but not whole requests)

`points.csv` columns (required first, then optional):
    sweep                 'input' | 'output' | 'grid'
    input_tokens          the input length the cost model is keyed on (actual tokens where known)
    output_tokens         generated tokens
    n_trials              warm trials aggregated into this row
    runtime_s_mean, runtime_s_std
    cpu_energy_j_mean, cpu_energy_j_std, gpu_energy_j_mean, gpu_energy_j_std
    energy_j_mean, energy_j_std            CPU + GPU within the profile's energy scope
  optional:
    input_tokens_nominal  the bin label the source used (8, 16, ..., 2048), where it differs
    runtime_s_mean_as_recorded             runtime before documented corrections (the M1 2 s sleep)
    energy_per_token_j_mean                mean over trials of energy / total tokens (the paper's EPT)
    total_tokens_mean, n_warmup_excluded
    status                'ok' | 'oom' | 'error' (settings that could not be measured are kept, not dropped)

Energy and runtime are per single request (batch 1) unless `metadata.batch_size` says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

POINT_COLUMNS: tuple[str, ...] = (
    "sweep",
    "input_tokens",
    "output_tokens",
    "n_trials",
    "runtime_s_mean",
    "runtime_s_std",
    "cpu_energy_j_mean",
    "cpu_energy_j_std",
    "gpu_energy_j_mean",
    "gpu_energy_j_std",
    "energy_j_mean",
    "energy_j_std",
)


@dataclass(frozen=True)
class BilinearFit:
    """E = a0*m + a1*n + a2*m*n (J) and R = b0*m + b1*n + b2*m*n (s): the paper's form (no intercept)."""

    energy_coefficients: tuple[float, float, float]
    runtime_coefficients: tuple[float, float, float]
    energy_scope: str
    source: str
    r2_energy: float | None = None
    r2_runtime: float | None = None
    input_range: tuple[float, float] | None = None
    """Input tokens of the grid the fit was made on (the range it may be used over)."""
    output_range: tuple[float, float] | None = None
    """Output tokens of the grid the fit was made on."""


@dataclass(frozen=True)
class ProfileMetadata:
    system: str
    """Operator-facing name of the machine, e.g. 'M1-Pro' or 'Swing AMD+A100'."""
    device: str
    """The accelerator that ran the model, e.g. 'Apple M1 Pro (14-core GPU)' or 'NVIDIA A100 40GB'."""
    model: str
    """The LLM, e.g. 'Llama-2 (7B)'."""
    dtype: str
    meter: str
    """How energy was measured: 'powermetrics', 'nvml+uprof', 'nvml+rapl', 'nvml', 'rapl', 'estimated', ..."""
    energy_scope: str
    """What the energy covers, in words: which devices, whether idle is subtracted, what is left out."""
    provenance: str
    """Where the numbers come from (paper artifact and commit, or the calibration run)."""
    date: str
    idle_power_w: float | None = None
    """Power the node draws while it serves nothing, within the same scope as the energies."""
    idle_power_source: str = "unknown"
    kv_cache: bool | None = None
    batch_size: int = 1
    estimated: bool = False
    """True when no energy counter was read (the `estimated` meter): the numbers are a
    model, not a measurement.
    """
    notes: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    """Anything else worth keeping: host, driver, library versions, corrections applied."""


class CostModel(Protocol):
    """Per-request energy and runtime as functions of input tokens m and output tokens n (vectorised)."""

    name: str
    input_range: tuple[float, float]
    output_range: tuple[float, float]

    def energy_j(self, input_tokens: ArrayLike, output_tokens: ArrayLike) -> np.ndarray: ...

    def cpu_energy_j(self, input_tokens: ArrayLike, output_tokens: ArrayLike) -> np.ndarray: ...

    def gpu_energy_j(self, input_tokens: ArrayLike, output_tokens: ArrayLike) -> np.ndarray: ...

    def runtime_s(self, input_tokens: ArrayLike, output_tokens: ArrayLike) -> np.ndarray: ...


SERVING_COST_COLUMNS: tuple[str, ...] = (
    "n_trials",
    "time_s_mean",
    "time_s_std",
    "cpu_energy_j_mean",
    "gpu_energy_j_mean",
    "energy_j_mean",
    "energy_j_std",
)
"""Columns every serving-table row carries after its keys (optional: `status` 'ok' | 'oom' | 'error')."""
PREFILL_KEYS: tuple[str, ...] = ("batch_size", "prompt_tokens")
"""A prefill pass: `batch_size` requests whose prompts add up to `prompt_tokens` tokens."""
DECODE_KEYS: tuple[str, ...] = ("batch_size", "context_tokens")
"""A decode iteration: `batch_size` running requests holding `context_tokens` KV tokens between them."""


@dataclass(frozen=True)
class ServingTables:
    """What one forward pass costs on a node whose engine batches (vLLM, TGI): the unit of continuous
    batching.

    A request-level profile prices a whole request served alone. A batching engine instead runs
    *iterations*: a prefill pass over newly admitted prompts, then decode iterations that each generate one
    token for every running request. These tables price one pass; per-request costs follow from how the
    engine schedules them (`hybridsim.simulator` shares each pass's energy out to the requests in it).

    Energy accounting: a pass's energy is everything the scope drew while the pass ran, idle draw included
    (nothing subtracted); `idle_power_w` is what the replica draws between passes. So a replica's energy
    over a period is the sum of its passes' energies plus idle power x the time it ran no pass.
    """

    prefill: pd.DataFrame
    """One row per measured prefill pass: PREFILL_KEYS + SERVING_COST_COLUMNS (time in s, energy in J)."""
    decode: pd.DataFrame
    """One row per measured decode iteration: DECODE_KEYS + SERVING_COST_COLUMNS."""
    kv_capacity_tokens: int
    """KV-cache tokens one model replica can hold (prompt + generated tokens of every running request)."""
    kv_capacity_source: str
    """How the capacity was derived, in words (device memory, weights, KV bytes per token, headroom)."""
    tensor_parallel: int = 1
    """GPUs per model replica; the tables price the whole replica."""
    energy_source: str = "measured"
    """'measured' (a meter read per pass), or a sentence saying how energy was modelled (e.g. a published
    power constant x measured time)."""
    idle_power_w: float | None = None
    """Power the replica draws while it runs no pass, within the tables' energy scope (W); None if unknown."""
    idle_power_source: str = "unknown"
    """How the idle power was obtained (metered before the run, a published constant, ...)."""
    kv_capacity_derivation: dict[str, float] = field(default_factory=dict)
    """The numbers behind `kv_capacity_tokens` where it was computed (device memory, weights and KV bytes
    per token in bytes, the headroom fraction), so that a reader can redo the arithmetic."""

    @property
    def energy_modelled(self) -> bool:
        """True when energy is not metered but modelled; every summary that uses it must say so."""
        return self.energy_source != "measured"


@dataclass(frozen=True)
class PassCost:
    """Time and energy of forward passes (vectorised: one entry per pass)."""

    time_s: np.ndarray
    cpu_energy_j: np.ndarray
    gpu_energy_j: np.ndarray

    @property
    def energy_j(self) -> np.ndarray:
        return self.cpu_energy_j + self.gpu_energy_j


class ServingCostModel(Protocol):
    """Cost of one prefill pass and one decode iteration, as pure vectorised functions of the batch.

    Implementations interpolate a profile's `ServingTables` monotonically between measured points and
    follow the request-level `out_of_range` contract ('error' | 'clamp' | 'extrapolate') outside them.
    """

    name: str
    kv_capacity_tokens: int
    batch_range: tuple[int, int]
    """Smallest and largest batch size measured."""

    def prefill(self, batch_size: ArrayLike, prompt_tokens: ArrayLike) -> PassCost: ...

    def decode(self, batch_size: ArrayLike, context_tokens: ArrayLike) -> PassCost: ...


@dataclass(frozen=True)
class Profile:
    name: str
    metadata: ProfileMetadata
    points: pd.DataFrame
    paper_fit: BilinearFit | None = None
    serving: ServingTables | None = None
    """Per-pass costs for continuous batching, where the profile has them."""

    def sweep(self, name: str) -> pd.DataFrame:
        """Measured rows of one sweep ('input', 'output' or 'grid'), sorted, failed settings left out."""
        rows = self.points[self.points["sweep"] == name]
        if "status" in rows.columns:
            rows = rows[rows["status"].fillna("ok") == "ok"]
        return rows.sort_values(["input_tokens", "output_tokens"]).reset_index(drop=True)
