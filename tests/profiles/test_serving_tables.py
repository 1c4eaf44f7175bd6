"""Serving tables on disk: they round-trip, a serving-only profile is a profile,
and bad tables are one line.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from hybridsim.simulator.profiles.cost_models import build_cost_model
from serving_fakes import serving_profile, write_serving_profile

from hybridsim.core.errors import HybridsimError
from hybridsim.core.profile_io import load_profile_dir


def test_serving_tables_round_trip_through_the_profile_directory(tmp_path: Path) -> None:
    path = write_serving_profile(tmp_path / "fake")
    assert sorted(p.name for p in path.iterdir()) == [
        "profile.json",
        "serving_decode.csv",
        "serving_prefill.csv",
    ]
    loaded = load_profile_dir(path)
    original = serving_profile().serving
    assert loaded.serving is not None and original is not None
    for table in ("prefill", "decode"):
        pd.testing.assert_frame_equal(
            getattr(loaded.serving, table).reset_index(drop=True),
            getattr(original, table).reset_index(drop=True),
            check_dtype=False,
            rtol=1e-5,
        )
    assert loaded.serving.kv_capacity_tokens == 100_000
    assert loaded.serving.tensor_parallel == 2
    assert loaded.serving.idle_power_w == 60.0
    assert loaded.serving.kv_capacity_derivation == {"headroom_fraction": 0.1}
    assert not loaded.serving.energy_modelled
    assert loaded.points.empty


def test_a_serving_only_profile_refuses_request_level_pricing_in_one_line(tmp_path: Path) -> None:
    profile = load_profile_dir(write_serving_profile(tmp_path / "fake"))
    with pytest.raises(HybridsimError, match="serving-only .* use it with continuous batching"):
        build_cost_model(profile)


def _edit_csv(name: str, edit: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        table = pd.read_csv(path / name)
        edit(table).to_csv(path / name, index=False)

    return damage


def _edit_block(key: str, value: object) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        document = json.loads((path / "profile.json").read_text())
        document["serving"][key] = value
        (path / "profile.json").write_text(json.dumps(document))

    return damage


def _set(column: str, row: int, value: object) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def edit(table: pd.DataFrame) -> pd.DataFrame:
        table[column] = table[column].astype(object)
        table.loc[row, column] = value
        return table

    return edit


BAD_TABLES = [
    (
        _edit_csv("serving_decode.csv", lambda t: t.drop(columns=["context_tokens"])),
        r"serving_decode.csv: missing axis context_tokens",
    ),
    (
        _edit_csv("serving_prefill.csv", lambda t: t.drop(columns=["energy_j_mean"])),
        r"serving_prefill.csv: missing columns energy_j_mean",
    ),
    (
        _edit_csv("serving_decode.csv", _set("time_s_mean", 2, 0.001)),
        r"serving_decode.csv: row 4: .*non-monotone time",
    ),
    (
        _edit_csv("serving_prefill.csv", _set("gpu_energy_j_mean", 0, -1.0)),
        r"serving_prefill.csv: row 2: gpu_energy_j_mean must be a finite number >= 0, got -1.0",
    ),
    (
        _edit_csv("serving_prefill.csv", _set("time_s_mean", 1, "inf")),
        r"serving_prefill.csv: row 3: time_s_mean must be a finite number >= 0",
    ),
    (
        _edit_csv("serving_decode.csv", _set("energy_j_mean", 1, "nan")),
        r"serving_decode.csv: row 3: energy_j_mean must be a finite",
    ),
    (
        _edit_csv("serving_prefill.csv", lambda t: t.assign(batch_size=0)),
        r"serving_prefill.csv: row 2: batch_size must be a whole number >= 1, got 0",
    ),
    (
        _edit_csv("serving_decode.csv", _set("batch_size", 0, 1.5)),
        r"serving_decode.csv: row 2: batch_size must be a whole number >= 1, got 1.5",
    ),
    (
        _edit_csv("serving_decode.csv", _set("time_s_mean", 0, "slow")),
        r"serving_decode.csv: row 2: time_s_mean must be a finite number",
    ),
    (_edit_csv("serving_decode.csv", lambda t: t.iloc[0:0]), r"serving_decode.csv: no measured passes"),
    (
        _edit_csv("serving_decode.csv", lambda t: pd.concat([t, t.iloc[[0]]])),
        r"serving_decode.csv: row 11: .* appears twice",
    ),
    (
        _edit_csv("serving_prefill.csv", _set("prompt_tokens", 3, 2)),
        r"serving_prefill.csv: row 5: prompt_tokens 2 is fewer than batch_size 4",
    ),
    (
        lambda path: (path / "serving_prefill.csv").unlink(),
        r"serving_prefill.csv: serving_prefill.csv not found",
    ),
    (
        _edit_block("kv_capacity_tokens", 10),
        r"profile.json: serving.kv_capacity_tokens 10 cannot hold one request",
    ),
    (
        _edit_block("kv_capacity_tokens", 0),
        r"profile.json: serving.kv_capacity_tokens: must be a whole number >= 1",
    ),
    (
        _edit_block("tensor_parallel", "eight"),
        r"profile.json: serving.tensor_parallel: must be a whole number",
    ),
    (_edit_block("idle_power_w", -5), r"profile.json: serving.idle_power_w: must be a number >= 0"),
    (_edit_block("energy_source", ""), r"profile.json: serving.energy_source: must be a non-empty sentence"),
]


@pytest.mark.parametrize(("damage", "message"), BAD_TABLES)
def test_a_bad_serving_table_is_one_line_naming_the_file(
    tmp_path: Path, damage: Callable[[Path], None], message: str
) -> None:
    path = write_serving_profile(tmp_path / "fake")
    damage(path)
    with pytest.raises(HybridsimError, match=message) as caught:
        load_profile_dir(path)
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)


def test_the_cli_reports_a_bad_serving_table_on_one_line_with_exit_2(tmp_path: Path) -> None:
    path = write_serving_profile(tmp_path / "fake")
    _edit_csv("serving_decode.csv", _set("time_s_mean", 2, 0.001))(path)
    result = subprocess.run(
        [sys.executable, "-m", "hybridsim", "profiles", "show", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}/serving_decode.csv: row 4")
    assert result.stdout == ""


def test_rows_that_could_not_be_measured_are_kept_but_not_checked(tmp_path: Path) -> None:
    path = write_serving_profile(tmp_path / "fake")
    table = pd.read_csv(path / "serving_decode.csv")
    oom = {**table.iloc[-1].to_dict(), "batch_size": 64, "context_tokens": 16384, "status": "oom"}
    oom.update({column: float("nan") for column in table.columns if column.endswith(("_mean", "_std"))})
    pd.concat([table, pd.DataFrame([oom])]).to_csv(path / "serving_decode.csv", index=False)
    loaded = load_profile_dir(path)
    assert loaded.serving is not None
    assert (loaded.serving.decode["status"] == "oom").sum() == 1


def test_a_dip_within_the_tables_own_noise_is_accepted_and_beyond_it_is_not(tmp_path: Path) -> None:
    path = write_serving_profile(tmp_path / "fake")
    table = pd.read_csv(path / "serving_decode.csv")
    table.loc[2, "time_s_mean"] = 0.7 * table.loc[1, "time_s_mean"]  # 30% below a row with less work
    table.loc[[1, 2], "time_s_std"] = 0.02  # ... but each mean is known only to +-0.02 / sqrt(5) s
    table.to_csv(path / "serving_decode.csv", index=False)
    assert load_profile_dir(path).serving is not None
    table.loc[[1, 2], "time_s_std"] = 0.001
    table.to_csv(path / "serving_decode.csv", index=False)
    with pytest.raises(HybridsimError, match="row 4: .*non-monotone time"):
        load_profile_dir(path)
