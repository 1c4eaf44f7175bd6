"""The product's whole path on the CPU: calibrate a tiny model, then simulate and analyse with its profile.

This is issue 4's promise: a profile that `hybridsim calibrate` writes (here labelled estimated, since this
machine has no energy counter) is used by `hybridsim run` as it is, beside the built-in profiles.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import CliRun

pytest.importorskip("transformers")


README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "### Your own profile in a scenario"


def readme_example() -> tuple[list[list[str]], str, str]:
    """The README's own-profile example: its `hybridsim` commands, the scenario's file name and its text."""
    text = README.read_text(encoding="utf-8")
    assert SECTION in text, "README lost its own-profile example"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    commands = re.search(r"```bash\n(.*?)```", section, flags=re.S)
    scenario = re.search(r"```yaml\n# (\S+)\n(.*?)```", section, flags=re.S)
    assert commands and scenario
    lines = [line.split("#")[0].strip() for line in commands.group(1).splitlines()]
    return [shlex.split(line) for line in lines if line], scenario.group(1), scenario.group(2)


@pytest.fixture(scope="module")
def readme_run(hybridsim: CliRun, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Runs the README's calibrate-then-simulate example exactly, in a fresh
    folder: (profile dir, results).
    """
    commands, scenario_file, scenario_text = readme_example()
    folder = tmp_path_factory.mktemp("readme")
    (folder / scenario_file).parent.mkdir(parents=True, exist_ok=True)
    (folder / scenario_file).write_text(scenario_text)
    assert [command[:2] for command in commands] == [["hybridsim", "calibrate"], ["hybridsim", "run"]]
    for command in commands:
        done = hybridsim(*command[1:], cwd=folder)
        assert done.returncode == 0, done.stderr
    calibrate, run = commands
    return folder / calibrate[calibrate.index("--out") + 1], folder / run[run.index("--out") + 1]


@pytest.fixture(scope="module")
def tiny_profile(readme_run: tuple[Path, Path]) -> Path:
    """The profile the README's example calibrated (tiny-llama on the CPU, estimated meter)."""
    return readme_run[0]


def test_the_readme_example_calibrates_then_simulates(readme_run: tuple[Path, Path]) -> None:
    profile_dir, results = readme_run
    profile = json.loads((profile_dir / "profile.json").read_text())["metadata"]
    assert profile["estimated"] and profile["meter"] == "estimated"
    assert profile["idle_power_w"] == 0.0 and "estimated meter" in profile["idle_power_source"]
    summary = json.loads((results / "summary.json").read_text())
    assert summary["cluster"]["cpu"]["idle_power_w_used"] == 0.0
    assert summary["cost_model"]["out_of_range"] == "clamp"
    assert "nearest measured length" in summary["cost_model"]["outside_profile_range"]
    runs = {run["policy"]: run for run in summary["runs"]}
    assert set(runs) == {"all-cpu", "all-a100", "output-8"}
    all_cpu = runs["all-cpu"]
    assert all_cpu["systems"]["cpu"]["requests"] == all_cpu["requests"] == 300
    # Alpaca's prompts are mostly longer than the 16 tokens --quick measured: counted, and priced (clamped)
    assert 0 < all_cpu["outside_profile_range"] == all_cpu["systems"]["cpu"]["outside_profile_range"] <= 300
    assert all_cpu["energy"]["active_j"] > 0 and all_cpu["systems"]["cpu"]["energy"]["idle_j"] == 0.0
    split = runs["output-8"]["systems"]
    assert split["cpu"]["requests"] > 0 and split["a100"]["requests"] > 0


def write_lengths(path: Path, rng: np.random.Generator, count: int) -> None:
    lengths = rng.integers(8, 33, size=(count, 2))
    path.write_text("input_tokens,output_tokens\n" + "".join(f"{m},{n}\n" for m, n in lengths))


def test_a_calibrated_profile_runs_in_the_simulator(
    hybridsim: CliRun, tiny_profile: Path, tmp_path: Path
) -> None:
    write_lengths(tmp_path / "lengths.csv", np.random.default_rng(1), 400)
    scenario = {
        "kind": "simulation",
        "name": "calibrated",
        "seed": 3,
        "cluster": {
            "cpu": {"profile": str(tiny_profile), "count": 2, "idle_power_w": 5.0},
            "a100": {"profile": "swing-a100/llama2-7b", "count": 1, "queue": "shared"},
        },
        "cost_model": {"method": "interpolated", "out_of_range": "clamp"},
        "workload": {"csv": "lengths.csv"},
        "max_tokens": 32,
        "arrival": {"process": "poisson", "rate": 0.05, "requests": 300},
        "predictor": {"kind": "oracle"},
        "policies": [
            {"name": "all-cpu", "policy": "all_on", "params": {"system": "cpu"}},
            {
                "name": "out-16",
                "policy": "output_threshold",
                "params": {"threshold": 16, "below": "cpu", "above": "a100"},
            },
        ],
    }
    path = tmp_path / "calibrated.yaml"
    path.write_text(yaml.safe_dump(scenario))
    done = hybridsim("run", str(path), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    runs = {run["policy"]: run for run in summary["runs"]}
    all_cpu = runs["all-cpu"]
    assert all_cpu["requests"] == 300 and all_cpu["systems"]["cpu"]["requests"] == 300
    # the calibrated profile priced every request: its active energy is the sum of its per-request energies
    records = pq.read_table(tmp_path / "out" / all_cpu["requests_file"]).to_pandas()
    assert len(records) == 300 and records["request_id"].is_unique
    assert records["energy_j"].sum() == pytest.approx(all_cpu["energy"]["active_j"], rel=1e-9)
    split = runs["out-16"]["systems"]
    assert split["cpu"]["requests"] > 0 and split["a100"]["requests"] > 0
    assert split["cpu"]["requests"] + split["a100"]["requests"] == 300


def test_a_calibrated_profile_runs_in_the_threshold_analysis(
    hybridsim: CliRun, tiny_profile: Path, tmp_path: Path
) -> None:
    write_lengths(tmp_path / "lengths.csv", np.random.default_rng(2), 500)
    scenario = {
        "kind": "threshold-sweep",
        "name": "calibrated-threshold",
        "seed": 0,
        "systems": {"cpu": {"profiles": [str(tiny_profile)]}, "a100": {"profiles": ["swing-a100/llama2-7b"]}},
        "workload": {"csv": "lengths.csv"},
        "method": "per-request",
        "rule": "output",
        "thresholds": [8, 16, 24, 32],
        "lam": 0.5,
        "out_of_range": "clamp",
    }
    path = tmp_path / "threshold.yaml"
    path.write_text(yaml.safe_dump(scenario))
    done = hybridsim("run", str(path), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["best_threshold"] in (8, 16, 24, 32)
    assert set(summary["baselines"]) == {"cpu", "a100"}
    assert all(row["energy_j"] > 0 for row in summary["thresholds"])
