"""`workload:` in a scenario: which token lengths to send, and how many.

    workload:
      dataset: alpaca            # a built-in table, or
      # csv: my-lengths.csv      # columns input_tokens,output_tokens[,count], or
      # jsonl: prompts.jsonl     # prompts, counted with
      # tokenizer: tokenizer.model
      requests: 10000            # omit: every record once, in a seeded shuffled order
      max_input_tokens: 2048     # optional filters, applied before drawing
      max_output_tokens: 512

With `requests: N` the N requests are drawn with replacement from the joint (input, output) distribution,
so prompt and answer lengths stay as correlated as they were in the data. Relative `csv`, `jsonl` and
`tokenizer` paths are resolved against `base_dir` (the scenario file's folder) when one is given.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from hybridsim.core.errors import HybridsimError
from hybridsim.core.limits import MAX_REQUESTS, TOKENS_MAX

from .datasets import BUILTIN_WORKLOADS, JointHistogram, TokenLengths, load_builtin, read_histogram_csv
from .user_data import read_jsonl_workload

Seed = int | np.random.SeedSequence


class WorkloadSpec(BaseModel):
    """Where request lengths come from, how many requests, and which lengths to keep."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    dataset: str | None = None
    csv: Path | None = None
    jsonl: Path | None = None
    tokenizer: Path | None = None
    requests: int | None = Field(default=None, ge=1, le=MAX_REQUESTS)
    max_input_tokens: int | None = Field(default=None, ge=1, le=TOKENS_MAX)
    max_output_tokens: int | None = Field(default=None, ge=1, le=TOKENS_MAX)

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, value: str | None) -> str | None:
        if value is not None and value not in BUILTIN_WORKLOADS:
            known = ", ".join(BUILTIN_WORKLOADS)
            raise PydanticCustomError("value_error", f"unknown built-in workload {value!r} (known: {known})")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> WorkloadSpec:
        sources = [key for key in ("dataset", "csv", "jsonl") if getattr(self, key) is not None]
        if len(sources) != 1:
            raise PydanticCustomError("value_error", "give exactly one of dataset, csv, jsonl")
        if (self.jsonl is None) != (self.tokenizer is None):
            raise PydanticCustomError(
                "value_error",
                "jsonl needs a tokenizer (a SentencePiece .model file), and tokenizer needs jsonl",
            )
        return self

    def source_name(self) -> str:
        if self.dataset is not None:
            return self.dataset
        return Path(self.csv or self.jsonl).stem  # type: ignore[arg-type]


def load_source(spec: WorkloadSpec, base_dir: Path | None = None) -> JointHistogram:
    """The joint histogram the spec names, before filters and sampling."""

    def resolve(path: Path) -> Path:
        return path if path.is_absolute() or base_dir is None else Path(base_dir) / path

    name = spec.source_name()
    if spec.dataset is not None:
        return load_builtin(spec.dataset)
    field = "csv" if spec.csv is not None else "jsonl"
    try:
        if spec.csv is not None:
            return read_histogram_csv(resolve(spec.csv), name, f"CSV {resolve(spec.csv)}")
        return read_jsonl_workload(resolve(spec.jsonl), resolve(spec.tokenizer), name)  # type: ignore[arg-type]
    except HybridsimError as error:  # name the scenario field the bad file came from
        raise HybridsimError(f"workload.{field}: {error}") from None


def apply_filters(table: JointHistogram, spec: WorkloadSpec) -> JointHistogram:
    """Keep only lengths within the spec's maxima; an empty result is the user's error."""
    keep = np.ones(table.count.shape, dtype=bool)
    notes = []
    if spec.max_input_tokens is not None:
        keep &= table.input_tokens <= spec.max_input_tokens
        notes.append(f"input <= {spec.max_input_tokens}")
    if spec.max_output_tokens is not None:
        keep &= table.output_tokens <= spec.max_output_tokens
        notes.append(f"output <= {spec.max_output_tokens}")
    kept = int(table.count[keep].sum())
    if kept == 0:
        why = f" after filters ({', '.join(notes)})" if notes else ""
        raise HybridsimError(f"workload: {table.name!r} has no requests{why}")
    if not notes:
        return table
    provenance = f"{table.provenance}; kept {kept:,} of {table.total:,} records with {' and '.join(notes)}"
    return JointHistogram(
        table.input_tokens[keep], table.output_tokens[keep], table.count[keep], table.name, provenance
    )


def sample(table: JointHistogram, requests: int | None, seed: Seed) -> TokenLengths:
    """Every record once in a seeded shuffled order (requests=None), or N seeded draws from the table."""
    rng = np.random.default_rng(seed)
    if requests is None:
        if table.total > MAX_REQUESTS:
            raise HybridsimError(
                f"workload: {table.name!r} holds {table.total:,} records, more than the {MAX_REQUESTS:,} "
                "one run may simulate; give workload.requests to draw fewer"
            )
        everything = table.expand()
        order = rng.permutation(len(everything))
        return TokenLengths(
            everything.input_tokens[order],
            everything.output_tokens[order],
            table.name,
            f"{table.provenance}; every record once ({table.total:,}), shuffled with the seed",
        )
    # Draw a record uniformly, then look up its cell: exact integer arithmetic, no float probabilities.
    picks = rng.integers(0, table.total, size=requests)
    cells = np.searchsorted(np.cumsum(table.count), picks, side="right")
    return TokenLengths(
        table.input_tokens[cells],
        table.output_tokens[cells],
        table.name,
        f"{table.provenance}; {requests:,} draws with replacement from the joint distribution",
    )


def build_workload(spec: WorkloadSpec, seed: Seed, base_dir: Path | None = None) -> TokenLengths:
    """The request lengths a scenario sends, reproducible from (spec, seed)."""
    return sample(apply_filters(load_source(spec, base_dir), spec), spec.requests, seed)
