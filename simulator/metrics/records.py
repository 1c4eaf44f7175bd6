"""The ledger of every request: when it came, when it started, when it left, where it ran, what it cost.

A datacenter serving a million requests a day cannot keep a Python object per request around, and does not
need to: the request's id is its row number. The columns that the event loop writes (start, finish, node,
energy share) are preallocated flat arrays; everything else (waits, services, energies) follows from them
and from the costs computed up front, in one vectorised pass once the simulation is over.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

NOT_SERVED = -1


class RequestRecords:
    """Preallocated columns the event loop fills in, one slot per request (no object per request)."""

    def __init__(self, requests: int) -> None:
        self.start_s = array("d", bytes(8 * requests))
        """When service began (s since the start of the run)."""
        self.finish_s = array("d", bytes(8 * requests))
        """When the answer was complete."""
        self.node = array("i", [NOT_SERVED]) * requests
        """Global index of the node that served the request; -1 until it is served."""
        self.energy_scale = array("d", [1.0]) * requests
        """The request's energy / its energy served alone (1 unless it shared a batch)."""


@dataclass(frozen=True)
class RequestTable:
    """The finished ledger as numpy columns (one row per request, in arrival order)."""

    columns: dict[str, np.ndarray]
    systems: tuple[str, ...]
    """Pool names; `system_code` indexes this tuple."""

    def __len__(self) -> int:
        return int(self.columns["request_id"].size)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def to_arrow(self) -> pa.Table:
        """The columns as an Arrow table, with `system` as a dictionary-encoded string column."""
        arrays, names = [], []
        for name, values in self.columns.items():
            if name == "system_code":
                codes = pa.array(values.astype(np.int32))
                arrays.append(pa.DictionaryArray.from_arrays(codes, pa.array(list(self.systems))))
                names.append("system")
            else:
                arrays.append(pa.array(values))
                names.append(name)
        return pa.Table.from_arrays(arrays, names=names)

    def write_parquet(self, path: Path) -> None:
        """Write the ledger as one Parquet file (deterministic bytes for identical columns)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(self.to_arrow(), path, compression="zstd", write_statistics=True)


PARQUET_COLUMNS: tuple[str, ...] = (
    "request_id",
    "arrival_s",
    "start_s",
    "finish_s",
    "node",
    "system",
    "input_tokens",
    "output_tokens",
    "max_tokens",
    "predicted_output_tokens",
    "wait_s",
    "service_s",
    "latency_s",
    "energy_j",
    "cpu_energy_j",
    "gpu_energy_j",
    "in_warmup",
    "outside_profile_range",
    "ttft_s",
    "tbt_mean_s",
    "tbt_max_s",
    "prefill_energy_j",
    "decode_energy_j",
    "preemptions",
)
"""What each per-request Parquet file holds, in order."""
