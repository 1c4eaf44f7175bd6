"""Token-length tables: what a stream of LLM requests asks of the cluster, in tokens.

A datacenter operator does not see prompts, only their sizes: how many tokens come in (the prompt, m)
and how many go out (the answer, n). Every cost in hybridsim is a function of those two numbers, so a
workload is nothing more than a list of (m, n) pairs.

The built-in workloads ship as joint histograms, one row per distinct (input_tokens, output_tokens) pair
with the number of records that had it, under `simulator/data/workloads/` (see PROVENANCE.md there).
The joint histogram keeps the correlation between prompt and answer lengths and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hybridsim.core.errors import HybridsimError, shown
from hybridsim.core.limits import MAX_WEIGHT, TOKENS_MAX
from hybridsim.core.readers import read_csv_file

DATA_DIR = Path(__file__).resolve().parents[1] / "data" / "workloads"
HISTOGRAM_COLUMNS: tuple[str, str, str] = ("input_tokens", "output_tokens", "count")


@dataclass(frozen=True)
class BuiltinWorkload:
    """One shipped token-length table and what it is."""

    name: str
    file: str
    label: str
    """One line a user reads before trusting the numbers."""


BUILTIN_WORKLOADS: dict[str, BuiltinWorkload] = {
    "alpaca": BuiltinWorkload(
        "alpaca",
        "alpaca.csv",
        "cleaned Stanford Alpaca (AlpacaDataCleaned), all 51,941 records, text-davinci-003 outputs; "
        "Llama-2 token counts incl. BOS (2 on the input, 1 on the output)",
    ),
    "alpaca-gpt4-sample": BuiltinWorkload(
        "alpaca-gpt4-sample",
        "alpaca-gpt4-sample.csv",
        "alpaca-gpt4 (the paper's variant), a random SAMPLE of 1,000 records, GPT-4 outputs (about 2.5x "
        "longer than davinci-003's); Llama-2 token counts incl. BOS (2 on the input, 1 on the output)",
    ),
}


@dataclass(frozen=True)
class TokenLengths:
    """A workload: one (input, output) token count per request, in arrival order."""

    input_tokens: np.ndarray
    """int64, tokens in each request's prompt (m)."""
    output_tokens: np.ndarray
    """int64, tokens each request generates (n)."""
    name: str
    provenance: str
    """Where the lengths come from and how they were drawn, in words."""

    def __post_init__(self) -> None:
        for field_name in ("input_tokens", "output_tokens"):
            values = np.ascontiguousarray(getattr(self, field_name), dtype=np.int64)
            values.setflags(write=False)
            object.__setattr__(self, field_name, values)
        if self.input_tokens.shape != self.output_tokens.shape or self.input_tokens.ndim != 1:
            raise ValueError("input_tokens and output_tokens must be 1-D arrays of the same length")

    def __len__(self) -> int:
        return int(self.input_tokens.size)


@dataclass(frozen=True)
class JointHistogram:
    """Distinct (input, output) pairs and how many records had each: a workload's joint distribution."""

    input_tokens: np.ndarray
    output_tokens: np.ndarray
    count: np.ndarray
    name: str
    provenance: str

    @property
    def total(self) -> int:
        return int(self.count.sum())

    @classmethod
    def from_records(
        cls, input_tokens: np.ndarray, output_tokens: np.ndarray, name: str, provenance: str
    ) -> JointHistogram:
        """Aggregate per-record counts into a histogram sorted by (input, output)."""
        pairs = np.stack([np.asarray(input_tokens, np.int64), np.asarray(output_tokens, np.int64)], axis=1)
        unique, counts = np.unique(pairs, axis=0, return_counts=True)
        return cls(unique[:, 0].copy(), unique[:, 1].copy(), counts.astype(np.int64), name, provenance)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens, "count": self.count}
        )

    def expand(self) -> TokenLengths:
        """Every record once, in the table's (sorted) order."""
        return TokenLengths(
            np.repeat(self.input_tokens, self.count),
            np.repeat(self.output_tokens, self.count),
            self.name,
            self.provenance,
        )


def validate_lengths(frame: pd.DataFrame, source: str, with_count: bool) -> pd.DataFrame:
    """Check token columns are whole numbers >= 1 (and counts >= 0); name the first bad row."""
    columns = list(HISTOGRAM_COLUMNS if with_count else HISTOGRAM_COLUMNS[:2])
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise HybridsimError(f"{source}: missing column(s) {', '.join(missing)} (need {', '.join(columns)})")
    out = {}
    for column in columns:
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
        lowest, highest = (0, MAX_WEIGHT) if column == "count" else (1, TOKENS_MAX)
        bad = ~np.isfinite(values) | (values != np.round(values)) | (values < lowest) | (values > highest)
        if bad.any():
            row = int(np.argmax(bad))
            raise HybridsimError(
                f"{source}: row {row + 2}: {column} must be an integer >= {lowest}"
                f"{f' and <= {highest:,}' if values[row] > highest else ''}, got "
                f"{shown(frame[column].iloc[row])}"
            )
        out[column] = values.astype(np.int64)
    return pd.DataFrame(out)


def read_histogram_csv(path: Path, name: str, provenance: str) -> JointHistogram:
    """A table with `input_tokens,output_tokens` and optionally `count` (one record per row without it)."""
    path = Path(path)
    frame = read_csv_file(path, "workload CSV")
    with_count = "count" in frame.columns
    table = validate_lengths(frame, str(path), with_count)
    if not with_count:
        return JointHistogram.from_records(
            table["input_tokens"].to_numpy(), table["output_tokens"].to_numpy(), name, provenance
        )
    table = table[table["count"] > 0]
    return JointHistogram(
        table["input_tokens"].to_numpy(),
        table["output_tokens"].to_numpy(),
        table["count"].to_numpy(),
        name,
        provenance,
    )


def load_builtin(name: str) -> JointHistogram:
    """The shipped joint histogram called `name` ('alpaca', 'alpaca-gpt4-sample')."""
    if name not in BUILTIN_WORKLOADS:
        raise HybridsimError(f"unknown built-in workload {name!r} (known: {', '.join(BUILTIN_WORKLOADS)})")
    entry = BUILTIN_WORKLOADS[name]
    provenance = (
        f"built-in '{name}': {entry.label}; table simulator/data/workloads/{entry.file} (PROVENANCE.md)"
    )
    return read_histogram_csv(DATA_DIR / entry.file, name, provenance)


def summarise(lengths: TokenLengths) -> dict[str, dict[str, float]]:
    """Count, mean, median, p90, p99, min, max and the share <= 32 tokens, per axis (README's statistics)."""
    stats = {}
    for axis in ("input_tokens", "output_tokens"):
        values = getattr(lengths, axis)
        if values.size == 0:
            raise HybridsimError(f"workload {lengths.name!r}: empty, no statistics")
        p50, p90, p99 = np.percentile(values, [50, 90, 99])
        stats[axis] = {
            "count": int(values.size),
            "mean": float(values.mean()),
            "median": float(p50),
            "p90": float(p90),
            "p99": float(p99),
            "min": int(values.min()),
            "max": int(values.max()),
            "frac_le_32": float(np.mean(values <= 32)),
        }
    return stats
