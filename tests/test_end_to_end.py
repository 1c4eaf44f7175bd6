"""The product's whole path on the CPU: calibrate a tiny model, then simulate and analyse with its profile.

This is issue 4's promise: a profile that `hybridsim calibrate` writes (here labelled estimated, since this
machine has no energy counter) is used by `hybridsim run` as it is, beside the built-in profiles.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

pytest.importorskip("transformers")


def hybridsim(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from hybridsim.cli import main; main()", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )


@pytest.fixture(scope="module")
def tiny_profile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("calibrated") / "tiny-cpu"
    done = hybridsim(
        "calibrate",
        "--arch",
        "tiny-llama",
        "--device",
        "cpu",
        "--dtype",
        "float32",
        "--meter",
        "estimated",
        "--tdp-w",
        "65",
        "--input-tokens",
        "8,16,32",
        "--output-tokens",
        "8,16,32",
        "--min-trials",
        "2",
        "--max-trials",
        "3",
        "--no-progress",
        "--out",
        str(out),
        cwd=out.parent,
    )
    assert done.returncode == 0, done.stderr
    return out


def write_lengths(path: Path, rng: np.random.Generator, count: int) -> None:
    lengths = rng.integers(8, 33, size=(count, 2))
    path.write_text("input_tokens,output_tokens\n" + "".join(f"{m},{n}\n" for m, n in lengths))


def test_a_calibrated_profile_runs_in_the_simulator(tiny_profile: Path, tmp_path: Path) -> None:
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


def test_a_calibrated_profile_runs_in_the_threshold_analysis(tiny_profile: Path, tmp_path: Path) -> None:
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
