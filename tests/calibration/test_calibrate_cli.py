"""`hybridsim calibrate` end to end on the CPU: a tiny random Llama, the estimated meter, a usable profile."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from calibration.cli import calibrate
from simulator.profiles.io import load_profile_dir, read_trials

REPO = Path(__file__).resolve().parents[2]


def hybridsim(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from simulator.cli import main; main()", *args],
                          capture_output=True, text=True, cwd=cwd, timeout=300)


def test_quick_calibration_writes_an_estimated_profile_the_simulator_loads(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    out = tmp_path / "tiny"
    args = ["calibrate", "--arch", "tiny-llama", "--device", "cpu", "--meter", "estimated", "--quick",
            "--out", str(out), "--no-progress"]
    done = hybridsim(*args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "meter: estimated (ESTIMATED" in done.stdout and "3 settings measured" in done.stdout
    profile = load_profile_dir(out)
    meta = profile.metadata
    assert meta.estimated and meta.meter == "estimated" and meta.model == "tiny-llama (test)"
    assert meta.kv_cache is True and meta.batch_size == 1 and meta.dtype == "bfloat16"
    assert meta.provenance.startswith("measured by `hybridsim calibrate --arch tiny-llama")
    assert {"cpu_model", "host", "libraries"} <= set(meta.extra["system_info"])
    assert meta.extra["system_info"]["libraries"]["transformers"]
    trials = read_trials(out)
    assert (trials["actual_output_tokens"] == trials["output_tokens"]).all()
    assert trials["estimated"].all() and trials["warmup"].sum() == 3
    model = profile.cost_model("interpolated")
    points = profile.points.set_index(["sweep", "input_tokens", "output_tokens"])
    np.testing.assert_allclose(model.energy_j(np.array([8, 16]), np.array([16, 8])),
                               [points.loc[("input", 8, 16), "energy_j_mean"],
                                points.loc[("output", 16, 8), "energy_j_mean"]], rtol=1e-6)
    assert np.isfinite(model.runtime_s(np.array([12]), np.array([12]))).all()
    assert model.input_range == (8.0, 16.0) and model.output_range == (8.0, 16.0)

    again = hybridsim(*args, cwd=tmp_path)  # the directory holds a calibration: refuse, one line, exit 2
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "--resume" in again.stderr
    resumed = hybridsim(*args, "--resume", cwd=tmp_path)  # nothing left to do: no new trials
    assert resumed.returncode == 0, resumed.stderr
    assert len(read_trials(out)) == len(trials)
    assert "resumed" in json.loads((out / "calibration.json").read_text())["command"]


def test_help_does_not_import_torch(tmp_path: Path) -> None:
    code = ("import sys\nfrom simulator.cli import cli\n"
            "try:\n    cli.main(['calibrate', '--help'], standalone_mode=False)\nfinally:\n"
            "    print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "--time-budget-s" in done.stdout and done.stdout.strip().endswith("NO-TORCH")


@pytest.mark.parametrize(("args", "message"), [
    (["--arch", "tiny-llama", "--dtype", "int4"], "--dtype: 'int4'"),
    (["--arch", "nope"], "unknown architecture 'nope'"),
    (["--arch", "tiny-llama", "--input-tokens", "8,x"], "--input-tokens: expected comma-separated"),
    (["--arch", "tiny-llama", "--min-trials", "5", "--max-trials", "2"], "--min-trials/--max-trials"),
    (["--arch", "tiny-llama", "--model", "some/model"], "exactly one of --model"),
    (["--arch", "tiny-llama", "--meter", "geiger"], "unknown meter 'geiger'"),
    (["--arch", "tiny-llama", "--resume", "--overwrite"], "contradict"),
])
def test_bad_options_are_one_line_user_errors(tmp_path: Path, args: list[str], message: str) -> None:
    from simulator.errors import HybridsimError

    result = CliRunner().invoke(calibrate, [*args, "--out", str(tmp_path / "x"), "--device", "cpu"],
                                standalone_mode=False)
    assert isinstance(result.exception, HybridsimError), result.output
    assert message in str(result.exception) and "\n" not in str(result.exception)
    assert not (tmp_path / "x").exists()
