"""The ledger of every request: when it came, when it started, when it left, where it ran, what it cost.

The event loop writes start, finish, node and batch share of each request into preallocated columns
(`cluster/records.py`); everything else (waits, services, energies) follows from them and from the costs
computed up front, in one vectorised pass once the simulation is over, into this table.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


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
        with path.open("wb") as handle:  # pyarrow takes a str path as a URI: no bytes beyond UTF-8
            pq.write_table(self.to_arrow(), handle, compression="zstd", write_statistics=True)


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
