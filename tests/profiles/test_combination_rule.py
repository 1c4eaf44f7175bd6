"""Which off-sweep rule predicts the measured 2-D grids best (the figures in cost_models' docstring).

Each grid's own row at n0 and column at m0 play the input and output sweeps; every other cell is a
prediction to check. Swing: A100, Llama-2 7B, GPU energy, 9x9, one trial per cell. M1 Pro: Llama-2 7B,
CPU+GPU, 1-3 trials per cell, without the 4 broken first-run rows and the rows that stopped early
(under 80% of the requested tokens generated: the grid script did not force a minimum length).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hybridsim.simulator.profiles.cost_models import COMBINATIONS, build_cost_model
from hybridsim.simulator.profiles.wilkins2024_refit import M1_GRID_BROKEN_PHASES

from hybridsim.core.profile_model import Profile, ProfileMetadata


def swing_cells(raw: Path) -> pd.DataFrame:
    rows = pd.read_csv(raw / "independence" / "all-stats-raw.csv")
    rows = rows[(rows["Model"] == "Llama-2-7b-chat-hf") & rows["Phase"].str.contains("inference")]
    return pd.DataFrame(
        {
            "m": rows["Number of Input Tokens"],
            "n": rows["Number of Output Tokens"],
            "energy": rows["GPU Energy (mJ)"] / 1e3,
            "runtime": rows["Runtime (s)"],
        }
    )


def m1_cells(raw: Path) -> pd.DataFrame:
    rows = pd.read_csv(raw / "independence" / "Llama-2-7b-chat-hf-M1-Pro.csv")
    rows = rows[rows["Phase"].str.contains("inference") & ~rows["Phase"].isin(M1_GRID_BROKEN_PHASES)]
    generated = rows["Total Number of Tokens"] - rows["Number of Input Tokens"]
    rows = rows[generated >= 0.8 * rows["Number of Output Tokens"]]
    return pd.DataFrame(
        {
            "m": rows["Number of Input Tokens"],
            "n": rows["Number of Output Tokens"],
            "energy": rows["CPU Energy (J)"] + rows["GPU Energy (J)"],
            "runtime": rows["Runtime (s)"],
        }
    )


def cross_profile(cells: pd.DataFrame, m0: int, n0: int) -> Profile:
    """A profile whose input and output sweeps are the grid's row n = n0 and column m = m0."""
    sweeps = []
    for sweep, rows in (("input", cells[cells["n"] == n0]), ("output", cells[cells["m"] == m0])):
        sweeps.append(
            pd.DataFrame(
                {
                    "sweep": sweep,
                    "input_tokens": rows["m"],
                    "output_tokens": rows["n"],
                    "n_trials": 1,
                    "runtime_s_mean": rows["runtime"],
                    "runtime_s_std": 0.0,
                    "cpu_energy_j_mean": 0.0,
                    "cpu_energy_j_std": 0.0,
                    "gpu_energy_j_mean": rows["energy"],
                    "gpu_energy_j_std": 0.0,
                    "energy_j_mean": rows["energy"],
                    "energy_j_std": 0.0,
                }
            )
        )
    metadata = ProfileMetadata("grid", "grid", "grid", "-", "-", "as the grid", "test", "-")
    return Profile("grid-cross", metadata, pd.concat(sweeps, ignore_index=True))


def rule_errors(cells: pd.DataFrame, m0: int, n0: int) -> dict[tuple[str, str], np.ndarray]:
    """|relative error| (%) of each rule on every cell off both sweeps (the energy sits in the GPU column)."""
    cells = cells.groupby(["m", "n"], as_index=False).mean()
    profile = cross_profile(cells, m0, n0)
    off = cells[(cells["m"] != m0) & (cells["n"] != n0)]
    errors = {}
    for rule in COMBINATIONS:
        model = build_cost_model(profile, combination=rule)
        for quantity, predict in (("energy", model.gpu_energy_j), ("runtime", model.runtime_s)):
            errors[rule, quantity] = np.abs(predict(off["m"], off["n"]) / off[quantity].to_numpy() - 1) * 100
    return errors


@pytest.mark.parametrize(
    ("grid", "m0", "median_limit", "p90_limit"), [("swing", 32, 4.0, 12.0), ("m1", 38, 2.0, 9.0)]
)
def test_per_step_rule_predicts_the_grids_best(
    shared_dir: Path, grid: str, m0: int, median_limit: float, p90_limit: float
) -> None:
    raw = shared_dir / "reference" / "wilkins2024" / "raw"
    errors = rule_errors(swing_cells(raw) if grid == "swing" else m1_cells(raw), m0, 32)
    for (rule, quantity), error in sorted(errors.items()):
        print(
            f"{grid} {rule:14s} {quantity:7s} cells={error.size} median {np.median(error):5.1f}% "
            f"p90 {np.percentile(error, 90):5.1f}% max {error.max():6.1f}%"
        )
    chosen = errors["per-step", "energy"]
    assert np.median(chosen) < median_limit and np.percentile(chosen, 90) < p90_limit
    for rule in ("multiplicative", "additive"):
        assert np.median(errors[rule, "energy"]) > 4 * np.median(chosen)
        assert np.percentile(errors[rule, "energy"], 90) > 4 * np.percentile(chosen, 90)
