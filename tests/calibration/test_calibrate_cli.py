"""`hybridsim calibrate` end to end on the CPU: a tiny random Llama, the estimated meter, a usable profile."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from calibration_fakes import fake_context
from click.testing import CliRunner
from conftest import CliRun
from hybridsim.calibration.cli import calibrate
from hybridsim.calibration.meters.auto import available_meters
from hybridsim.calibration.meters.common import MeterUnavailable
from hybridsim.calibration.profile_writer import save_context
from hybridsim.simulator.profiles.cost_models import build_cost_model

from hybridsim.core.errors import HybridsimError
from hybridsim.core.profile_io import load_profile_dir, read_trials

REPO = Path(__file__).resolve().parents[2]


def test_quick_calibration_writes_an_estimated_profile_the_simulator_loads(
    hybridsim: CliRun, tmp_path: Path
) -> None:
    pytest.importorskip("transformers")
    out = tmp_path / "tiny"
    args = [
        "calibrate",
        "--arch",
        "tiny-llama",
        "--device",
        "cpu",
        "--meter",
        "estimated",
        "--quick",
        "--accelerator-w",
        "10",
        "--out",
        str(out),
        "--no-progress",
    ]
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
    method = meta.extra["meter"]["method"]  # the estimate's formula with its numbers, in the profile itself
    assert meta.extra["meter"]["accelerator_w"] == 10.0 and "10 W accelerator" in method
    assert meta.extra["meter_methods"] == [method]
    trials = read_trials(out)
    assert (trials["actual_output_tokens"] == trials["output_tokens"]).all()
    assert trials["estimated"].all() and trials["warmup"].sum() == 3
    assert (trials["gpu_energy_j"] > 0).all()  # --accelerator-w reached the meter
    model = build_cost_model(profile, "interpolated")
    points = profile.points.set_index(["sweep", "input_tokens", "output_tokens"])
    # energy = CPU + GPU, each stored to 6 significant digits in points.csv: equal to within their rounding
    np.testing.assert_allclose(
        model.energy_j(np.array([8, 16]), np.array([16, 8])),
        [points.loc[("input", 8, 16), "energy_j_mean"], points.loc[("output", 16, 8), "energy_j_mean"]],
        rtol=1e-5,
    )
    assert np.isfinite(model.runtime_s(np.array([12]), np.array([12]))).all()
    assert model.input_range == (8.0, 16.0) and model.output_range == (8.0, 16.0)

    again = hybridsim(*args, cwd=tmp_path)  # the directory holds a calibration: refuse, one line, exit 2
    assert again.returncode == 2 and again.stderr.count("\n") == 1 and "--resume" in again.stderr
    resumed = hybridsim(*args, "--resume", cwd=tmp_path)  # nothing left to do: no new trials
    assert resumed.returncode == 0, resumed.stderr
    assert len(read_trials(out)) == len(trials)
    assert "resumed" in json.loads((out / "calibration.json").read_text())["command"]


def test_help_does_not_import_torch(tmp_path: Path) -> None:
    code = (
        "import sys\nfrom hybridsim.cli import cli\n"
        "try:\n    cli.main(['calibrate', '--help'], standalone_mode=False)\nfinally:\n"
        "    print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "--time-budget-s" in done.stdout and done.stdout.strip().endswith("NO-TORCH")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--arch", "tiny-llama", "--dtype", "int4"], "--dtype: 'int4'"),
        (["--arch", "nope"], "unknown architecture 'nope'"),
        (["--arch", "tiny-llama", "--input-tokens", "8,x"], "--input-tokens: expected comma-separated"),
        (
            ["--arch", "tiny-llama", "--output-tokens", "8,-16"],
            "--output-tokens: token counts must be positive",
        ),
        (
            ["--arch", "tiny-llama", "--max-input", "4"],
            "--max-input 4: leaves no token counts (the smallest is 8)",
        ),
        (["--arch", "tiny-llama", "--fixed-input", "-1"], "--fixed-input/--fixed-output: must be >= 1"),
        (["--arch", "tiny-llama", "--min-trials", "5", "--max-trials", "2"], "--min-trials/--max-trials"),
        (["--arch", "tiny-llama", "--model", "some/model"], "exactly one of --model"),
        (["--model", "./no/such/model"], "--model ./no/such/model: not a local model directory"),
        (
            ["--arch", "tiny-llama", "--device", "cuda:x"],
            "--device: 'cuda:x' is not cpu, cuda, cuda:N or mps",
        ),
        (["--arch", "tiny-llama", "--meter", "geiger"], "unknown meter 'geiger'"),
        (["--arch", "tiny-llama", "--meter", "estimated", "--idle-s", "-3"], "--idle-s: must be >= 0"),
        (
            ["--arch", "tiny-llama", "--meter", "estimated", "--idle-s", "5"],
            "--idle-s: only --meter rapl or auto or nvidia or powermetrics",
        ),
        (["--arch", "tiny-llama", "--meter", "nvidia", "--tdp-w", "65"], "--tdp-w: only --meter estimated"),
        (
            ["--arch", "tiny-llama", "--meter", "auto", "--uprof-csv", "t.csv"],
            "--uprof-csv: only --meter uprof",
        ),
        (["--arch", "tiny-llama", "--resume", "--overwrite"], "contradict"),
        # click's own usage errors, one line like the rest
        (["--arch", "tiny-llama", "--frobnicate"], "calibrate: No such option"),
        (["--arch", "tiny-llama", "--min-trials", "x"], "'x' is not a valid integer"),
    ],
)
def test_bad_options_are_one_line_user_errors(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(
        calibrate, ["--out", str(tmp_path / "x"), "--device", "cpu", *args], standalone_mode=False
    )
    assert isinstance(result.exception, HybridsimError), result.output
    assert message in str(result.exception) and "\n" not in str(result.exception)
    assert not (tmp_path / "x").exists()


def test_usage_errors_through_hybridsim_are_one_stderr_line(hybridsim: CliRun, tmp_path: Path) -> None:
    done = hybridsim("calibrate", "--arch", "tiny-llama", cwd=tmp_path)  # --out is missing
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert done.stderr.startswith("error: calibrate: Missing option '--out'")


@pytest.mark.parametrize("meter", ["nvidia", "rapl", "powermetrics", "auto"])
def test_a_meter_this_machine_lacks_is_refused_without_fallback(tmp_path: Path, meter: str) -> None:
    pytest.importorskip("torch")
    available = available_meters()
    counters = ("nvidia", "rapl", "powermetrics")
    if any(available[name] is None for name in (counters if meter == "auto" else (meter,))):
        pytest.skip(f"this machine can be measured with --meter {meter}")
    result = CliRunner().invoke(
        calibrate,
        ["--arch", "tiny-llama", "--device", "cpu", "--meter", meter, "--out", str(tmp_path / "x")],
        standalone_mode=False,
    )
    assert isinstance(result.exception, MeterUnavailable), result.output
    message = str(result.exception)
    assert "\n" not in message and "meter:" not in result.output  # refused, not replaced by another meter
    assert all(name in message for name in (counters if meter == "auto" else (meter,)))
    assert not (tmp_path / "x").exists()


def test_resume_with_a_different_dtype_is_refused_before_the_model_is_built(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    out = tmp_path / "cal"
    run = {
        "model": None,
        "arch": "tiny-llama",
        "dtype": "bfloat16",
        "device": "cpu",
        "batch_size": 1,
        "kv_cache": True,
        "meter": "estimated",
    }
    save_context(out, fake_context(run=run))
    before = (out / "calibration.json").read_text()
    result = CliRunner().invoke(
        calibrate,
        [
            "--arch",
            "tiny-llama",
            "--device",
            "cpu",
            "--meter",
            "estimated",
            "--dtype",
            "float32",
            "--resume",
            "--out",
            str(out),
        ],
        standalone_mode=False,
    )
    assert isinstance(result.exception, HybridsimError)
    assert "dtype 'bfloat16' -> 'float32'" in str(result.exception) and "model:" not in result.output
    assert (out / "calibration.json").read_text() == before and sorted(p.name for p in out.iterdir()) == [
        "calibration.json"
    ]


def test_a_run_that_fails_before_its_first_trial_leaves_no_calibration(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    out = tmp_path / "cal"
    result = CliRunner().invoke(
        calibrate,
        [
            "--arch",
            "tiny-llama",
            "--device",
            "cpu",
            "--meter",
            "estimated",
            "--quick",
            "--time-budget-s",
            "0.001",
            "--no-progress",
            "--out",
            str(out),
        ],
        standalone_mode=False,
    )
    assert isinstance(result.exception, HybridsimError) and "used up by start-up" in str(result.exception)
    assert not out.exists()  # a rerun needs no --resume or --overwrite


WITHOUT_SIMULATOR_DEPS = (
    "import sys\n"
    "for name in ('pydantic', 'simpy'):\n"
    "    sys.modules[name] = None  # `import` raises ImportError, importlib.util.find_spec says absent\n"
    "from hybridsim.cli import main\n"
    "main()\n"
)
"""`hybridsim` as on a GPU image with torch but neither pydantic nor simpy installed."""


def test_calibrate_runs_without_pydantic_and_simpy(tmp_path: Path) -> None:
    def hybridsim_bare(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", WITHOUT_SIMULATOR_DEPS, *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=300,
        )

    listing = hybridsim_bare("--help")
    assert listing.returncode == 0, listing.stderr
    commands = listing.stdout.split("Commands:")[1]
    assert all(name in commands for name in ("run", "compare", "profiles", "workload", "calibrate"))
    assert "unavailable here" in commands  # `run` needs pydantic and says so
    helped = hybridsim_bare("calibrate", "--help")
    assert helped.returncode == 0 and "--time-budget-s" in helped.stdout, helped.stderr
    refused = hybridsim_bare("run", "scenario.yaml")
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "pydantic" in refused.stderr
    pytest.importorskip("transformers")
    out = tmp_path / "bare"
    done = hybridsim_bare(
        "calibrate",
        "--arch",
        "tiny-llama",
        "--device",
        "cpu",
        "--meter",
        "estimated",
        "--quick",
        "--min-trials",
        "1",
        "--max-trials",
        "1",
        "--warmup",
        "0",
        "--no-progress",
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    assert json.loads((out / "profile.json").read_text())["metadata"]["estimated"] is True


def test_calibrate_without_the_extra_says_how_to_get_it(tmp_path: Path) -> None:
    """The core install has no torch: `hybridsim calibrate` then names the extra, in one line."""
    code = WITHOUT_SIMULATOR_DEPS.replace("('pydantic', 'simpy')", "('torch', 'transformers')")
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "calibrate",
            "--arch",
            "tiny-llama",
            "--device",
            "cpu",
            "--meter",
            "estimated",
            "--quick",
            "--out",
            str(tmp_path / "p"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "calibrate needs torch and transformers: pip install 'hybridsim[calibrate]'" in done.stderr
    assert not (tmp_path / "p").exists()
