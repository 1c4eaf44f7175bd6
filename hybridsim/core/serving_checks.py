"""Is this serving table believable? The checks a per-pass cost table passes before anything prices with it.

A serving table is handed to us as a CSV: by a calibration run, by an importer, or by a person who typed
it. Whatever went wrong there (a column left out, a batch size of zero, seconds written as milliseconds
in one row, a KV cache that could not hold a single request) is reported here as one line naming the file
and the problem, before the simulator can turn it into plausible-looking nonsense.

What is checked, per table (rows whose `status` is not 'ok' are kept on record and not checked):
* every key and cost column is present, and numeric;
* batch sizes are whole numbers >= 1, token counts whole numbers >= the batch size (each request holds
  at least one token), no (batch size, tokens) pair twice;
* costs are finite and >= 0 (a standard deviation may be empty: one trial has none);
* time does not fall as the pass grows: a pass with more tokens at the same batch size, or more requests
  of the same length, may not take less than `MONOTONE_TOLERANCE` of the time of the smaller pass. Real
  measurements are noisy (Splitwise's decode iterations at batch 1 wander by 3% over the context; a tiny
  model's decode on a busy CPU is flat in context and wanders by more), so a dip is accepted when it is
  under a fifth, or within three combined standard errors of the two rows' trials (`time_s_std`,
  `n_trials`): a fall by more than both is a broken row, not noise.
And for the profile: the KV-cache capacity holds at least one request of the smallest measured context.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hybridsim.core.errors import HybridsimError, shown
from hybridsim.core.profile_model import SERVING_COST_COLUMNS

MONOTONE_TOLERANCE = 0.8
"""A pass may take no less than this fraction of the time of any pass with less work..."""
NOISE_Z = 3.0
"""... unless the two means are within this many combined standard errors of each other (then the dip is
noise in the table's own trials, not a broken row)."""
OPTIONAL_NAN_COLUMNS = ("time_s_std", "energy_j_std")


def ok_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The measured rows of a serving table (status 'ok' or no status column)."""
    if "status" not in table.columns:
        return table
    return table[table["status"].fillna("ok").astype(str) == "ok"]


def check_serving_table(table: pd.DataFrame, path: Path, keys: Sequence[str]) -> pd.DataFrame:
    """`table` (as read from `path`) checked, with integer keys; raises
    `HybridsimError` on the first problem.
    """
    required = list(keys) + list(SERVING_COST_COLUMNS)
    missing = [column for column in required if column not in table.columns]
    if missing:
        axes = [column for column in missing if column in keys]
        what = f"axis {', '.join(axes)}" if axes else f"columns {', '.join(missing)}"
        raise HybridsimError(f"{path}: missing {what} (needs {', '.join(required)})")
    if table.empty:
        raise HybridsimError(f"{path}: no measured passes")
    measured = ok_rows(table)
    if measured.empty:
        raise HybridsimError(f"{path}: no row with status 'ok'")
    for column in required:
        values = pd.to_numeric(measured[column], errors="coerce")
        nan_allowed = column in OPTIONAL_NAN_COLUMNS
        bad = ~np.isfinite(values.to_numpy(dtype=float)) & ~(nan_allowed & values.isna().to_numpy())
        bad |= values.to_numpy(dtype=float) < 0
        if column in keys:
            whole = values.to_numpy(dtype=float)
            bad |= ~np.isfinite(whole) | (whole < 1) | (np.floor(whole) != whole)
        if bad.any():
            index = measured.index[bad.argmax()]
            need = "a whole number >= 1" if column in keys else "a finite number >= 0"
            raise HybridsimError(
                f"{path}: row {index + 2}: {column} must be {need}, got {shown(measured[column].loc[index])}"
            )
    checked = table.copy()
    for column in keys:
        checked.loc[measured.index, column] = measured[column].astype(np.int64)
    measured = ok_rows(checked).astype({column: np.int64 for column in keys})
    batch, tokens = keys
    small = measured[measured[tokens] < measured[batch]]
    if len(small):
        index = small.index[0]
        raise HybridsimError(
            f"{path}: row {index + 2}: {tokens} {small[tokens].iloc[0]} is fewer than batch_size "
            f"{small[batch].iloc[0]} (each request holds at least one token)"
        )
    twice = measured[measured.duplicated(list(keys), keep="first")]
    if len(twice):
        index = twice.index[0]
        raise HybridsimError(
            f"{path}: row {index + 2}: {batch} {twice[batch].iloc[0]}, {tokens} {twice[tokens].iloc[0]} "
            "appears twice"
        )
    _check_monotone_time(measured, path, batch, tokens)
    return checked


def _check_monotone_time(measured: pd.DataFrame, path: Path, batch: str, tokens: str) -> None:
    """Time must not fall by more than the tolerance where the pass does more work (module docstring)."""
    per_request = measured[tokens] / measured[batch]
    for group_key, order in ((measured[batch], tokens), (per_request, batch)):
        for _, group in measured.groupby(group_key, sort=False):
            group = group.sort_values(order)
            times = group["time_s_mean"].to_numpy(dtype=float)
            errors = _standard_errors(group)
            for position in range(1, len(times)):
                earlier = int(np.argmax(times[:position]))
                dip = times[earlier] - times[position]
                noise = NOISE_Z * math.hypot(errors[earlier], errors[position])
                if not (times[position] < MONOTONE_TOLERANCE * times[earlier] and dip > noise):
                    continue
                row, before = group.iloc[position], group.iloc[earlier]
                raise HybridsimError(
                    f"{path}: row {group.index[position] + 2}: time_s_mean {row['time_s_mean']:.4g} s at "
                    f"{batch} {row[batch]}, {tokens} {row[tokens]} is below {before['time_s_mean']:.4g} s "
                    f"at {batch} {before[batch]}, {tokens} {before[tokens]} (less work): time must not fall "
                    "as a pass grows (non-monotone time)"
                )


def _standard_errors(group: pd.DataFrame) -> np.ndarray:
    """Standard error of each row's mean time (std / sqrt(trials)); 0 where the table gives no spread."""
    std = pd.to_numeric(group.get("time_s_std", pd.Series(np.nan, index=group.index)), errors="coerce")
    trials = pd.to_numeric(group["n_trials"], errors="coerce").clip(lower=1)
    return np.nan_to_num((std / np.sqrt(trials)).to_numpy(dtype=float), nan=0.0)


def check_serving_block(block: Any, where: str) -> dict[str, Any]:
    """The `serving` block of profile.json: required keys with sensible values; `where` names the file."""
    if not isinstance(block, Mapping):
        raise HybridsimError(f"{where}: serving: must be a mapping, got {shown(block)}")
    for key in ("kv_capacity_tokens", "kv_capacity_source"):
        if key not in block:
            raise HybridsimError(f"{where}: serving.{key}: missing")
    for key in ("kv_capacity_tokens", "tensor_parallel"):
        value = block.get(key, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise HybridsimError(f"{where}: serving.{key}: must be a whole number >= 1, got {shown(value)}")
    idle = block.get("idle_power_w")
    if idle is not None and (
        isinstance(idle, bool) or not isinstance(idle, (int, float)) or not math.isfinite(idle) or idle < 0
    ):
        raise HybridsimError(
            f"{where}: serving.idle_power_w: must be a number >= 0 (W) or null, got {idle!r}"
        )
    for key in ("kv_capacity_source", "energy_source", "idle_power_source"):
        value = block.get(key, "x")
        if not isinstance(value, str) or not value.strip():
            raise HybridsimError(f"{where}: serving.{key}: must be a non-empty sentence, got {shown(value)}")
    derivation = block.get("kv_capacity_derivation", {})
    if not isinstance(derivation, Mapping):
        raise HybridsimError(f"{where}: serving.kv_capacity_derivation: must be a mapping")
    return dict(block)


def check_kv_capacity(capacity: int, decode: pd.DataFrame, where: str) -> None:
    """The KV cache must hold at least one request of the smallest context the decode table measured."""
    measured = ok_rows(decode)
    per_request = int(np.ceil((measured["context_tokens"] / measured["batch_size"]).min()))
    if capacity < per_request:
        raise HybridsimError(
            f"{where}: serving.kv_capacity_tokens {capacity} cannot hold one request (the smallest measured "
            f"decode context is {per_request} tokens per request)"
        )
