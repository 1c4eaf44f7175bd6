"""The paper method reproduces the e2dc artifact: its per-bin tables and its threshold figures (README §6).

Known, explained differences (asserted below, not just tolerated):
* The artifact drops every phase whose name contains "0": iteration 0 as intended, but also iterations
  10 and 20 where they exist (M1 input bin 1024; M1 and Swing output bin 512). Our profiles drop only
  iteration 0, so those three cells differ by up to 0.3%.
* The artifact used 52,002 alpaca-gpt4 prompts; the built-in `alpaca` has the 51,941 cleaned ones.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hybridsim.simulator.analysis.threshold import per_bin_table
from hybridsim.simulator.profiles.registry import load_profile
from hybridsim.simulator.scenario.loader import run_scenario

M1 = ["m1-pro/llama2-7b", "m1-pro/mistral-7b"]
SWING = ["swing-a100/llama2-7b", "swing-a100/mistral-7b", "swing-a100/falcon-7b"]
ITERATION_10_20_CELLS = {("input", 1024, "m1"), ("output", 512, "m1"), ("output", 512, "swing")}


@pytest.fixture(scope="module")
def reference(shared_dir: Path) -> Path:
    return shared_dir / "reference" / "wilkins2024"


@pytest.fixture(scope="module")
def per_bin() -> dict[tuple[str, str], pd.DataFrame]:
    groups = {"m1": [load_profile(n) for n in M1], "swing": [load_profile(n) for n in SWING]}
    return {
        (sweep, side): per_bin_table(profiles, sweep, side).to_frame().set_index("token_bin")
        for sweep in ("input", "output")
        for side, profiles in groups.items()
    }


def test_per_bin_tables_match_the_artifacts(reference: Path, per_bin: dict) -> None:
    expected = pd.read_csv(reference / "derived" / "threshold-inputs-per-bin.csv")
    for row in expected.itertuples():
        for side in ("m1", "swing"):
            ours = per_bin[(row.sweep, side)].loc[row.token_bin]
            tolerance = 3e-3 if (row.sweep, row.token_bin, side) in ITERATION_10_20_CELLS else 1e-4
            assert ours.energy_per_token_j == pytest.approx(
                getattr(row, f"{side}_energy_per_token_j"), rel=tolerance
            )
            assert ours.runtime_s == pytest.approx(getattr(row, f"{side}_runtime_s"), rel=tolerance)


def test_the_only_differences_are_the_artifacts_iteration_10_and_20_drop(
    reference: Path, per_bin: dict
) -> None:
    """Recompute the differing cells from the raw trials under both filters."""
    expected = pd.read_csv(reference / "derived" / "threshold-inputs-per-bin.csv")
    systems = {"m1": "M1-Pro", "swing": "Swing AMD+A100"}
    for sweep, bin_, side in sorted(ITERATION_10_20_CELLS):
        raw = pd.read_csv(reference / "raw" / f"all-{sweep}-stats.csv")
        column = "Number of Input Tokens" if sweep == "input" else "Number of Output Tokens"
        raw = raw[
            raw["Phase"].str.contains("inference")
            & (raw["System"] == systems[side])
            & (raw[column] == bin_)
            & raw["Model"].isin(["Llama-2 (7B)", "Mistral (7B)", "Falcon (7B)"])
        ]
        ept = (raw["CPU Energy (J)"] + raw["GPU Energy (J)"]) / raw["Total Number of Tokens"]
        warm = raw["Iteration"] != 0
        artifact = ~raw["Phase"].str.contains("0")
        assert (warm & ~artifact).any()  # iterations 10/20 exist here
        reference_value = expected[(expected.sweep == sweep) & (expected.token_bin == bin_)][
            f"{side}_energy_per_token_j"
        ].item()
        assert ept[artifact].mean() == pytest.approx(reference_value, rel=1e-5)
        assert ept[warm].mean() == pytest.approx(
            per_bin[(sweep, side)].loc[bin_].energy_per_token_j, rel=1e-5
        )


def pdf_values(reference: Path, threshold_on: str, metric: str) -> pd.DataFrame:
    table = pd.read_csv(reference / "derived" / "threshold-sweep-from-artifact-pdfs.csv")
    return table[(table.threshold_on == threshold_on) & (table.metric == metric)].set_index("threshold")


def test_input_threshold_reproduces_the_papers_figure(
    reference: Path, repo_root: Path, tmp_path: Path
) -> None:
    summary = run_scenario(repo_root / "scenarios" / "paper-input-threshold.yaml", tmp_path / "run")
    energy = pdf_values(reference, "input", "energy_kWh")
    assert summary["best_threshold"] == 32
    assert summary["workload"]["requests"] == 51_941
    kwh = {row["threshold"]: row["energy_j"] / 3.6e6 for row in summary["thresholds"]}
    for threshold, row in energy.iterrows():
        assert kwh[threshold] == pytest.approx(row.hybrid, rel=0.01)  # 51,941 vs 52,002 prompts
    assert summary["best_energy_kwh"] == pytest.approx(0.748, rel=0.01)
    assert summary["baselines_kwh"]["Swing AMD+A100"] == pytest.approx(0.815, rel=0.01)
    assert summary["baselines_kwh"]["M1-Pro"] == pytest.approx(0.795, rel=0.01)
    assert summary["savings_vs_baseline_pct"]["Swing AMD+A100"] == pytest.approx(8.2, abs=0.3)
    # The artifact's token-weighted "runtime" at T = 32 is ~8.7x its Swing-only value.
    runtime = summary["runtime_metric_artifact"]
    ratio = runtime["best"] / runtime["baselines"]["Swing AMD+A100"]
    assert ratio == pytest.approx(
        pdf_values(reference, "input", "runtime_metric").loc[32].ratio_to_swing_only, rel=0.02
    )


def test_output_threshold_with_the_artifacts_bug_finds_its_optimum(
    reference: Path, repo_root: Path, tmp_path: Path
) -> None:
    """With input lengths looked up in the output bins (the artifact's bug), T = 32 wins as in its figure.

    The totals are 2-4% above the figure's (0.657 vs 0.645 kWh at T = 32). Not the lengths: the same
    lengths reproduce the input figure to 0.2%, and a shift in them moves both figures together. Not the
    per-bin tables as derived from the committed raw CSV either (they agree to 0.3%). So the committed
    output PDF was most likely rendered from an earlier state of all-output-stats.csv (unverifiable).
    """
    text = (repo_root / "scenarios" / "paper-output-threshold.yaml").read_text()
    scenario = tmp_path / "bug.yaml"
    scenario.write_text(text.replace("artifact_output_bug: false", "artifact_output_bug: true"))
    summary = run_scenario(scenario, tmp_path / "run")
    energy = pdf_values(reference, "output", "energy_kWh")
    assert summary["best_threshold"] == 32
    assert summary["best_energy_kwh"] == pytest.approx(energy.loc[32].hybrid, rel=0.03)
    assert summary["baselines_kwh"]["Swing AMD+A100"] == pytest.approx(energy.loc[32].swing_only, rel=0.03)
    assert summary["baselines_kwh"]["M1-Pro"] == pytest.approx(energy.loc[32].m1_only, rel=0.05)
    assert summary["savings_vs_baseline_pct"]["Swing AMD+A100"] == pytest.approx(7.7, abs=0.5)
    # the correct rule (output lengths) prices far more tokens and saves far less
    correct = run_scenario(repo_root / "scenarios" / "paper-output-threshold.yaml", tmp_path / "correct")
    assert correct["best_energy_kwh"] > 5 * summary["best_energy_kwh"]
    assert correct["savings_vs_baseline_pct"]["Swing AMD+A100"] < 2.0
    assert np.isfinite(correct["best_energy_j"])
