"""From serving trials to a serving profile: `serving_trials.csv` -> serving tables + `profile.json`.

Per setting, over warm trials with status 'ok': the mean and sample standard deviation of the per-pass
time and energy, and how many trials. A setting that could not be measured keeps a row with its status
('oom', 'skipped') and no means, so that the table says where the machine ran out of memory. The
profile is serving-only (no points.csv): the sweep measured passes, not whole requests. What does not
change while the run goes on (KV-cache capacity and its derivation, idle power) comes from the run's
record, `calibration.json` (`extra.serving`), written when the run started.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hybridsim.core.errors import HybridsimError
from hybridsim.core.profile_io import read_trials, save_profile_dir
from hybridsim.core.profile_model import POINT_COLUMNS, Profile, ServingTables

from .fitting import is_true
from .profile_writer import (
    CALIBRATION_FILE,
    CalibrationContext,
    _json_ready,
    load_context,
    measured_metadata,
)
from .serving_protocol import SERVING_TRIALS_FILE
from .trial_log import TERMINAL_STATUSES

TOKEN_KEYS = {"prefill": "prompt_tokens", "decode": "context_tokens"}


def aggregate_passes(trials: pd.DataFrame, table: str) -> pd.DataFrame:
    """One row per (batch size, tokens) of `table` in the serving-table format (statuses kept)."""
    tokens = TOKEN_KEYS[table]
    columns = [
        "batch_size",
        tokens,
        "n_trials",
        "time_s_mean",
        "time_s_std",
        "cpu_energy_j_mean",
        "gpu_energy_j_mean",
        "energy_j_mean",
        "energy_j_std",
        "repeats_mean",
        "status",
    ]
    rows: list[dict[str, Any]] = []
    if not trials.empty:
        mine = trials[trials["table"] == table].copy()
        mine["status"] = mine["status"].fillna("ok").astype(str)
        mine["is_warmup"] = is_true(mine["warmup"])
        for (batch, total), group in mine.groupby(["batch_size", "total_tokens"], sort=True):
            warm = group[(group["status"] == "ok") & ~group["is_warmup"]]
            failed = [s for s in TERMINAL_STATUSES if (group["status"] == s).any()]
            if warm.empty and not failed:
                continue
            row: dict[str, Any] = {"batch_size": int(batch), tokens: int(total), "n_trials": int(len(warm))}
            for quantity in ("time_s", "cpu_energy_j", "gpu_energy_j", "energy_j"):
                values = warm[quantity].astype(float)
                row[f"{quantity}_mean"] = float(values.mean()) if len(values) else math.nan
                row[f"{quantity}_std"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
            row["repeats_mean"] = float(warm["repeats"].astype(float).mean()) if len(warm) else math.nan
            row["status"] = failed[0] if failed else "ok"
            rows.append(row)
    frame = pd.DataFrame(rows, columns=columns + ["cpu_energy_j_std", "gpu_energy_j_std"])
    return frame[columns].reset_index(drop=True)


def build_serving_profile(name: str, trials: pd.DataFrame, context: CalibrationContext) -> Profile | None:
    """The serving-only profile of everything measured so far; None until both tables have a pass."""
    prefill, decode = aggregate_passes(trials, "prefill"), aggregate_passes(trials, "decode")
    if not ((prefill["status"] == "ok").any() and (decode["status"] == "ok").any()):
        return None
    serving = context.extra.get("serving")
    if not isinstance(serving, dict):
        raise HybridsimError(f"{CALIBRATION_FILE}: no extra.serving record: not a serving calibration")
    estimated = context.estimated or bool(is_true(trials["estimated"]).any())
    tables = ServingTables(
        prefill=prefill,
        decode=decode,
        kv_capacity_tokens=int(serving["kv_capacity_tokens"]),
        kv_capacity_source=str(serving["kv_capacity_source"]),
        tensor_parallel=int(serving.get("tensor_parallel", 1)),
        # An estimated meter reads no counter: the tables (and every summary using them) say modelled.
        energy_source=(
            f"modelled by the {context.meter} meter, not metered: {context.energy_scope}"
            if estimated
            else "measured"
        ),
        idle_power_w=serving.get("idle_power_w"),
        idle_power_source=str(serving.get("idle_power_source", "unknown")),
        kv_capacity_derivation=dict(serving.get("kv_capacity_derivation", {})),
    )
    dates = pd.to_datetime(trials["started_at"], errors="coerce", utc=True).dropna()
    first = dates.min().date().isoformat() if len(dates) else "unknown"
    last = dates.max().date().isoformat() if len(dates) else "unknown"
    notes = list(context.notes)
    if estimated:
        notes.append("energies are ESTIMATED (no energy counter was read): a model, not a measurement")
    statuses = trials["status"].fillna("ok").astype(str).value_counts().to_dict()
    metadata = measured_metadata(
        context,
        first,
        last,
        idle_power_w=tables.idle_power_w,
        idle_power_source=tables.idle_power_source,
        kv_cache=True,
        batch_size=1,
        estimated=estimated,
        notes=tuple(notes),
        extra=_json_ready(
            {
                **{k: v for k, v in context.extra.items() if k != "serving"},
                "command": context.command,
                "run": context.run,
                "trials_by_status": {str(k): int(v) for k, v in statuses.items()},
            }
        ),
    )
    return Profile(
        name=name, metadata=metadata, points=pd.DataFrame(columns=list(POINT_COLUMNS)), serving=tables
    )


def write_serving_profile(out_dir: Path, context: CalibrationContext | None = None) -> Profile | None:
    """Rewrite the serving tables and profile.json from serving_trials.csv; None while incomplete."""
    out_dir = Path(out_dir)
    context = context or load_context(out_dir)
    if context is None:
        raise HybridsimError(f"{out_dir}: no {CALIBRATION_FILE}: not a calibration directory")
    trials = read_trials(out_dir, SERVING_TRIALS_FILE)
    if trials.empty:
        return None
    profile = build_serving_profile(out_dir.name, trials, context)
    if profile is not None:
        save_profile_dir(profile, out_dir)
    return profile


def kv_capacity(
    device_memory_bytes: int | None,
    weights_bytes: int,
    kv_bytes_per_token: int,
    headroom_fraction: float,
    where: str,
) -> dict[str, Any]:
    """The `extra.serving` KV fields: capacity = (memory x (1 - headroom) - weights) / KV bytes per token."""
    if device_memory_bytes is None:
        raise HybridsimError(f"{where}: cannot tell this device's memory, so not its KV-cache capacity")
    free = device_memory_bytes * (1 - headroom_fraction) - weights_bytes
    capacity = int(np.floor(free / kv_bytes_per_token)) if free > 0 else 0
    if capacity < 1:
        raise HybridsimError(f"{where}: the weights leave no memory for a KV cache")
    return {
        "kv_capacity_tokens": capacity,
        "kv_capacity_source": (
            f"derived: ({device_memory_bytes / 2**30:.1f} GiB device memory x (1 - "
            f"{headroom_fraction:g} headroom) - {weights_bytes / 2**30:.3g} GiB weights) / "
            f"{kv_bytes_per_token:,} KV bytes per token"
        ),
        "kv_capacity_derivation": {
            "device_memory_bytes": float(device_memory_bytes),
            "weights_bytes": float(weights_bytes),
            "kv_bytes_per_token": float(kv_bytes_per_token),
            "headroom_fraction": headroom_fraction,
        },
    }
