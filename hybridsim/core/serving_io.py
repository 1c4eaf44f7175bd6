"""Serving tables on disk: `serving_prefill.csv`, `serving_decode.csv` and the `serving` block of
profile.json.

A profile that a batching engine can use carries, beside (or instead of) its per-request points, what one
prefill pass and one decode iteration cost (`hybridsim.core.profile_model.ServingTables`). The tables
are plain CSV, one row per measured pass, so that a person can read and `git diff` them; what describes
them as a whole (KV-cache capacity and its derivation, GPUs per replica, idle power, where the energy
comes from) sits in profile.json:

    "serving": {"kv_capacity_tokens": 59846, "kv_capacity_source": "...", "kv_capacity_derivation": {...},
                "tensor_parallel": 2, "energy_source": "measured" | "<how it was modelled>",
                "idle_power_w": 126.0, "idle_power_source": "..."}

Everything read is checked (`serving_checks.py`); a bad table is one line naming the file, exit 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from hybridsim.core.atomic import write_text_atomic
from hybridsim.core.profile_model import DECODE_KEYS, PREFILL_KEYS, SERVING_COST_COLUMNS, ServingTables
from hybridsim.core.readers import read_csv_file
from hybridsim.core.serving_checks import check_kv_capacity, check_serving_block, check_serving_table

PREFILL_FILE = "serving_prefill.csv"
DECODE_FILE = "serving_decode.csv"


def load_serving(path: Path, block: Any, meta_path: Path) -> ServingTables:
    """The serving tables of the profile directory `path`, described by profile.json's `serving` block."""
    block = check_serving_block(block, str(meta_path))
    prefill_path, decode_path = Path(path) / PREFILL_FILE, Path(path) / DECODE_FILE
    prefill = check_serving_table(read_csv_file(prefill_path, PREFILL_FILE), prefill_path, PREFILL_KEYS)
    decode = check_serving_table(read_csv_file(decode_path, DECODE_FILE), decode_path, DECODE_KEYS)
    capacity = int(block["kv_capacity_tokens"])
    check_kv_capacity(capacity, decode, str(meta_path))
    idle = block.get("idle_power_w")
    return ServingTables(
        prefill=prefill,
        decode=decode,
        kv_capacity_tokens=capacity,
        kv_capacity_source=str(block["kv_capacity_source"]),
        tensor_parallel=int(block.get("tensor_parallel", 1)),
        energy_source=str(block.get("energy_source", "measured")),
        idle_power_w=None if idle is None else float(idle),
        idle_power_source=str(block.get("idle_power_source", "unknown")),
        kv_capacity_derivation=dict(block.get("kv_capacity_derivation", {})),
    )


def serving_block(tables: ServingTables) -> dict[str, Any]:
    """The `serving` block of profile.json for `tables`."""
    return {
        "kv_capacity_tokens": int(tables.kv_capacity_tokens),
        "kv_capacity_source": tables.kv_capacity_source,
        "kv_capacity_derivation": dict(tables.kv_capacity_derivation),
        "tensor_parallel": int(tables.tensor_parallel),
        "energy_source": tables.energy_source,
        "idle_power_w": tables.idle_power_w,
        "idle_power_source": tables.idle_power_source,
    }


def save_serving(tables: ServingTables, path: Path) -> None:
    """Write both tables (atomically), keys and cost columns first, sorted by batch size then tokens."""
    for table, keys, name in (
        (tables.prefill, PREFILL_KEYS, PREFILL_FILE),
        (tables.decode, DECODE_KEYS, DECODE_FILE),
    ):
        write_text_atomic(Path(path) / name, table_csv(table, keys))


def table_csv(table: pd.DataFrame, keys: tuple[str, ...]) -> str:
    """One serving table as the CSV text the profile directory holds."""
    first = list(keys) + list(SERVING_COST_COLUMNS)
    columns = first + [column for column in table.columns if column not in first]
    ordered = table[columns].sort_values(list(keys), kind="stable")
    return str(ordered.to_csv(index=False, float_format="%.6g", lineterminator="\n"))
