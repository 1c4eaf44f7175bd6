"""The raw files of Wilkins, Keshav & Mortier (e-Energy '24), read as tables: one row per trial.

The upstream repository (`UPSTREAM`, pinned to a commit) keeps each sweep in one CSV of every phase of
every run: inference trials and the start-up phases (tokenizer load, model load) before them. This module
reads those files and nothing more: the inference trials with their columns renamed, and the start-up
windows (the only ones in which the GPUs did no inference). What the numbers mean and how they are
corrected is the importer's business (`wilkins2024.py`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from hybridsim.core.readers import read_csv_file

UPSTREAM = "github.com/grantwilkins/energy-inference @ 5c2cfa4a9bdbccc6a037ece3d2eb64322db115ea"
"""The upstream repository and the commit the raw files were copied at (named in every provenance)."""
SWEEP_FILES = {
    "input": ("all-input-stats.csv", "Output Token Limit"),
    "output": ("all-output-stats.csv", "Number of Output Tokens"),
}
"""Per sweep: the raw file and the column that holds the output length."""


def read_raw_csv(path: Path) -> pd.DataFrame:
    """One raw CSV of the upstream repository (a missing or unreadable file is a user error)."""
    return read_csv_file(path, "raw file of the Wilkins et al. 2024 data")


def read_sweep_trials(files: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Every inference trial of both sweeps (`files`: each sweep's raw file),
    one row each, columns renamed.
    """
    frames = []
    for sweep, (_, limit_column) in SWEEP_FILES.items():
        raw = files[sweep]
        raw = raw[raw["Phase"].str.contains("inference")]
        frame = pd.DataFrame(
            {
                "sweep": sweep,
                "system": raw["System"],
                "model": raw["Model"],
                "prompt_id": raw["Phase"].str.split("-").str[-2],
                "input_tokens_raw": raw["Number of Input Tokens"],
                "output_tokens": raw[limit_column],
                "iteration": raw["Iteration"],
                "runtime_s": raw["Runtime (s)"],
                "cpu_energy_j": raw["CPU Energy (J)"],
                "gpu_energy_j": raw["GPU Energy (J)"],
                "total_tokens": raw["Total Number of Tokens"],
            }
        )
        frames.append(frame)
    trials = pd.concat(frames, ignore_index=True)
    trials["energy_j"] = trials["cpu_energy_j"] + trials["gpu_energy_j"]
    trials["energy_per_token_j"] = trials["energy_j"] / trials["total_tokens"]
    trials.loc[trials["sweep"] == "output", "prompt_id"] = "C"
    return trials


def read_startup_rows(files: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Start-up phases (tokenizer load, model load): the only windows in which the GPUs did no inference."""
    raw = pd.concat([files[sweep] for sweep in SWEEP_FILES], ignore_index=True)
    raw = raw[~raw["Phase"].str.contains("inference")]
    return pd.DataFrame(
        {
            "system": raw["System"],
            "model": raw["Model"],
            "phase": raw["Phase"],
            "gpu_power_w": raw["GPU Energy (J)"] / raw["Runtime (s)"],
        }
    )
