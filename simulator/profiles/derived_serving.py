"""A batching-GPU serving profile for a 7B model where none is measured: a labelled derivation.

hybridsim has a 7B model measured on an A100 request by request (`swing-a100/llama2-7b`, Wilkins et al.)
and batching measured on A100s for a 70B model (`splitwise-a100/llama2-70b-tp8`, Splitwise), but no 7B
serving table. Until a GPU calibration (`hybridsim calibrate --serving`) measures one, this module derives
one, and every number it writes says so:

* **batch 1** from the request-level profile: the cost of one more answer token at prompt length c is the
  slope (R(c, 256) - R(c, 8)) / 248 of the interpolated runtime (and of CPU and GPU energy): a decode
  iteration at context c; a prefill of p tokens is R(p, 8) less 7 such iterations;
* **across batch sizes** the shape Splitwise measured for Llama-2-70B on A100s: a pass of b requests costs
  the batch-1 pass of one request's tokens x (the 70B pass of b requests / its batch-1 pass), time and
  energy alike (energy follows time, as in Splitwise's constant-power assumption), made monotone (running
  maxima: a pass with more work never costs less);
* **KV capacity** from the device memory: (40 GiB x 0.9 - weights) / KV bytes per token of Llama-2-7B
  (2 x 32 layers x 4096 x 2 bytes, fp16).

    python -m hybridsim.simulator.profiles.derived_serving simulator/data/profiles
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from hybridsim.core.profile_io import save_profile_dir
from hybridsim.core.profile_model import (
    POINT_COLUMNS,
    Profile,
    ProfileMetadata,
    ServingCostModel,
    ServingTables,
)

from .cost_models import build_cost_model
from .registry import load_profile
from .serving_costs import build_serving_cost_model

REQUEST_PROFILE = "swing-a100/llama2-7b"
SHAPE_PROFILE = "splitwise-a100/llama2-70b-tp8"
NAME = "swing-a100-batched/llama2-7b"
BATCHES = (1, 2, 4, 8, 16, 32, 64)
PER_REQUEST_TOKENS = (16, 32, 64, 128, 256, 512, 1024, 2048)
"""Within the request-level profile's measured prompts (9-2117 tokens)."""
GIB = 1024**3
WEIGHTS_BYTES = 6.74e9 * 2  # Llama-2-7B parameters, fp16
KV_BYTES_PER_TOKEN = 2 * 32 * 4096 * 2
MEMORY_BYTES, HEADROOM = 40 * GIB, 0.1
SHORT, LONG = 8, 256


def kv_capacity_tokens() -> int:
    return int((MEMORY_BYTES * (1 - HEADROOM) - WEIGHTS_BYTES) // KV_BYTES_PER_TOKEN)


def _batch_one(request: Profile, tokens: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{quantity: (prefill of `tokens` prompt tokens, one decode iteration at context `tokens`)}."""
    model = build_cost_model(request, "interpolated", "clamp")
    short, long = np.full(tokens.size, float(SHORT)), np.full(tokens.size, float(LONG))
    out = {}
    for quantity, price in (
        ("time_s", model.runtime_s),
        ("cpu", model.cpu_energy_j),
        ("gpu", model.gpu_energy_j),
    ):
        at_short, at_long = price(tokens, short), price(tokens, long)
        per_token = np.maximum((at_long - at_short) / (LONG - SHORT), 0.0)
        out[quantity] = (np.maximum(at_short - (SHORT - 1) * per_token, per_token), per_token)
    return out


def _table(kind: str, request: Profile, shape: ServingCostModel) -> pd.DataFrame:
    tokens = np.array(PER_REQUEST_TOKENS, dtype=np.float64)
    alone = _batch_one(request, tokens)
    which = 0 if kind == "prefill" else 1
    price = shape.prefill if kind == "prefill" else shape.decode
    values = {}
    for q in ("time_s", "cpu", "gpu"):
        grid = np.array(
            [
                alone[q][which]
                * price(np.full(tokens.size, batch), batch * tokens).time_s
                / price(np.ones(tokens.size), tokens).time_s
                for batch in BATCHES
            ]
        )
        # a pass with more work never costs less: running maxima along tokens, then along batch sizes
        values[q] = np.maximum.accumulate(np.maximum.accumulate(grid, axis=1), axis=0)
    rows = []
    for b, batch in enumerate(BATCHES):
        time, cpu, gpu = values["time_s"][b], values["cpu"][b], values["gpu"][b]
        for k, per_request in enumerate(PER_REQUEST_TOKENS):
            rows.append(
                {
                    "batch_size": batch,
                    "prompt_tokens" if kind == "prefill" else "context_tokens": batch * per_request,
                    "n_trials": 0,
                    "time_s_mean": float(time[k]),
                    "time_s_std": float("nan"),
                    "cpu_energy_j_mean": float(cpu[k]),
                    "gpu_energy_j_mean": float(gpu[k]),
                    "energy_j_mean": float(cpu[k] + gpu[k]),
                    "energy_j_std": float("nan"),
                    "status": "ok",
                }
            )
    return pd.DataFrame(rows)


def derive() -> Profile:
    """The derived serving-only profile (see the module docstring)."""
    request = load_profile(REQUEST_PROFILE)
    shape = build_serving_cost_model(load_profile(SHAPE_PROFILE), "clamp")
    meta = request.metadata
    how = (
        f"DERIVED, not measured: batch 1 from {REQUEST_PROFILE} (per-token slope of its interpolated runtime "
        f"and energy between {SHORT} and {LONG} output tokens), batch sizes scaled by the time ratios "
        f"Splitwise measured for {SHAPE_PROFILE}; energy follows time"
    )
    capacity = kv_capacity_tokens()
    tables = ServingTables(
        prefill=_table("prefill", request, shape),
        decode=_table("decode", request, shape),
        kv_capacity_tokens=capacity,
        kv_capacity_source=(
            f"derived: (40 GiB x (1 - {HEADROOM:g} headroom) - {WEIGHTS_BYTES / 1e9:.2f} GB weights) / "
            f"{KV_BYTES_PER_TOKEN:,} KV bytes per token (Llama-2-7B, fp16)"
        ),
        tensor_parallel=1,
        energy_source=how,
        idle_power_w=meta.idle_power_w,
        idle_power_source=f"{REQUEST_PROFILE}: {meta.idle_power_source}",
        kv_capacity_derivation={
            "weights_bytes": WEIGHTS_BYTES,
            "kv_bytes_per_token": float(KV_BYTES_PER_TOKEN),
        },
    )
    metadata = ProfileMetadata(
        system=f"{meta.system} (batching, derived)",
        device=meta.device,
        model=meta.model,
        dtype=meta.dtype,
        meter=f"none: derived from {REQUEST_PROFILE} ({meta.meter}) and {SHAPE_PROFILE}",
        energy_scope=f"as {REQUEST_PROFILE}: {meta.energy_scope}",
        provenance=how,
        date=meta.date,
        idle_power_w=meta.idle_power_w,
        idle_power_source=tables.idle_power_source,
        kv_cache=True,
        batch_size=1,
        estimated=True,
        notes=(
            "a DERIVATION standing in for a 7B GPU serving calibration: replace with "
            "`hybridsim calibrate --serving`",
            "the 70B batching shape assumes a 7B model gains from batching as a 70B one on 8 GPUs does",
        ),
        extra={"request_profile": REQUEST_PROFILE, "shape_profile": SHAPE_PROFILE},
    )
    return Profile(NAME, metadata, pd.DataFrame(columns=list(POINT_COLUMNS)), serving=tables)


if __name__ == "__main__":  # pragma: no cover - a maintainer's regeneration
    target = Path(sys.argv[1]) / NAME
    save_profile_dir(derive(), target)
    print(target)
