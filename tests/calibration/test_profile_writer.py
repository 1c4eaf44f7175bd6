"""Trials -> points.csv + profile.json: aggregation, metadata, and a profile the simulator loads."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from calibration_fakes import fake_context
from hybridsim.calibration.profile_writer import (
    aggregate_points,
    load_context,
    resumable_context,
    save_context,
    write_profile,
)
from hybridsim.simulator.profiles.cost_models import build_cost_model

from hybridsim.core.errors import HybridsimError
from hybridsim.core.profile_io import append_trials, load_profile_dir, read_trials
from hybridsim.core.profile_model import POINT_COLUMNS


def trial(
    sweep: str, m: int, n: int, k: int, runtime: float, *, warmup: bool = False, status: str = "ok"
) -> dict:
    from hybridsim.calibration.trials_file import TRIAL_COLUMNS

    row = dict.fromkeys(TRIAL_COLUMNS, "")
    ok = status == "ok"
    row.update(
        sweep=sweep,
        input_tokens=m,
        output_tokens=n,
        trial=k,
        warmup=warmup,
        status=status,
        started_at="2025-03-04T10:00:00+00:00",
    )
    if ok:
        row.update(
            runtime_s=runtime,
            cpu_energy_j=10 * runtime,
            gpu_energy_j=30 * runtime,
            energy_j=40 * runtime,
            actual_input_tokens=m,
            actual_output_tokens=n,
            batch_size=1,
            total_tokens=m + n,
            energy_per_token_j=40 * runtime / (m + n),
            peak_memory_mb=100.0 + k,
            estimated=False,
            meter_method="fake",
        )
    return row


@pytest.fixture()
def calibration_dir(tmp_path: Path) -> Path:
    rows = []
    for sweep, m, n in (
        ("input", 8, 32),
        ("input", 64, 32),
        ("input+output", 32, 32),
        ("output", 32, 8),
        ("output", 32, 64),
    ):
        base = 0.01 * m + 0.1 * n
        rows.append(trial(sweep, m, n, 0, 99.0, warmup=True))
        rows += [trial(sweep, m, n, k, base * (1 + 0.01 * k)) for k in (1, 2, 3)]
    rows.append(trial("output", 32, 128, 0, 0.0, warmup=True, status="oom"))
    append_trials(tmp_path, rows)
    save_context(tmp_path, fake_context(notes=("a note",)))
    return tmp_path


def test_points_aggregate_warm_trials_per_setting_and_sweep(calibration_dir: Path) -> None:
    points = aggregate_points(read_trials(calibration_dir))
    assert set(POINT_COLUMNS) <= set(points.columns)
    anchor = points[(points["input_tokens"] == 32) & (points["output_tokens"] == 32)]
    assert sorted(anchor["sweep"]) == ["input", "output"]
    row = anchor.iloc[0]
    runtimes = [3.52 * (1 + 0.01 * k) for k in (1, 2, 3)]  # 0.01 m + 0.1 n
    assert row["n_trials"] == 3 and row["n_warmup_excluded"] == 1
    assert row["runtime_s_mean"] == pytest.approx(np.mean(runtimes))
    assert row["runtime_s_std"] == pytest.approx(np.std(runtimes, ddof=1))
    assert row["energy_j_mean"] == pytest.approx(row["cpu_energy_j_mean"] + row["gpu_energy_j_mean"])
    assert row["energy_per_token_j_mean"] == pytest.approx(40 * np.mean(runtimes) / 64)
    assert row["peak_memory_mb_max"] == 103.0
    oom = points[points["output_tokens"] == 128].iloc[0]
    assert oom["status"] == "oom" and oom["n_trials"] == 0 and math.isnan(oom["energy_j_mean"])


def test_written_profile_loads_with_metadata_and_a_working_cost_model(calibration_dir: Path) -> None:
    write_profile(calibration_dir)
    profile = load_profile_dir(calibration_dir)
    meta = profile.metadata
    assert (meta.system, meta.device, meta.meter, meta.kv_cache, meta.batch_size) == (
        "test-box",
        "Fake GPU",
        "fake",
        True,
        1,
    )
    assert meta.date == "2025-03-04" and "hybridsim calibrate --test" in meta.provenance
    assert meta.notes == ("a note",) and not meta.estimated
    assert meta.extra["trials_by_status"] == {"ok": 20, "oom": 1}
    assert meta.extra["meter_methods"] == ["fake"]  # how the trials were measured, as the meter said
    assert profile.paper_fit is not None and profile.paper_fit.input_range == (8.0, 64.0)
    model = build_cost_model(profile, "interpolated")
    assert model.runtime_s(np.array([32]), np.array([32]))[0] == pytest.approx(3.52 * 1.02, rel=1e-6)
    assert model.output_range == (8.0, 64.0)
    json.loads((calibration_dir / "profile.json").read_text())  # strict JSON: no NaN anywhere


def test_estimated_trials_label_the_profile(tmp_path: Path) -> None:
    rows = [trial("input+output", 8, 8, 0, 1.0) | {"estimated": True}]
    append_trials(tmp_path, rows)
    save_context(tmp_path, fake_context())
    profile = write_profile(tmp_path)
    assert profile is not None and profile.metadata.estimated
    assert any("ESTIMATED" in note for note in profile.metadata.notes)


def test_nothing_measured_yet_writes_no_profile(tmp_path: Path) -> None:
    append_trials(tmp_path, [trial("input", 8, 8, 0, 1.0, warmup=True)])
    save_context(tmp_path, fake_context())
    assert write_profile(tmp_path) is None and not (tmp_path / "profile.json").exists()


def test_resume_refuses_a_different_model(tmp_path: Path) -> None:
    assert resumable_context(tmp_path, fake_context().run) is None  # nothing to continue yet
    save_context(tmp_path, fake_context())
    previous = load_context(tmp_path)
    assert previous == fake_context()
    assert resumable_context(tmp_path, fake_context().run) == previous
    with pytest.raises(HybridsimError, match="dtype 'bfloat16' -> 'float16'"):
        resumable_context(tmp_path, {**fake_context().run, "dtype": "float16"})


def test_resume_refuses_trials_without_a_calibration_record(tmp_path: Path) -> None:
    append_trials(tmp_path, [trial("input", 8, 8, 0, 1.0)])
    with pytest.raises(HybridsimError, match="trials.csv without calibration.json"):
        resumable_context(tmp_path, fake_context().run)
