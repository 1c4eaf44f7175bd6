"""Profile directories on disk: trials survive an interrupted write; damaged
directories are one clear error.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from hybridsim.simulator.profiles.registry import BUILTIN_DIR, load_profile

from hybridsim.core.errors import HybridsimError
from hybridsim.core.profile_io import append_trials, read_trials


def test_append_after_a_torn_write_keeps_every_whole_trial(tmp_path: Path) -> None:
    append_trials(tmp_path, [{"trial": 0, "runtime_s": 1.5}, {"trial": 1, "runtime_s": 1.6}])
    with (tmp_path / "trials.csv").open("a") as handle:
        handle.write("2,1.")  # the process died half-way through this line
    with pytest.warns(UserWarning, match="torn last line"):
        append_trials(tmp_path, [{"trial": 2, "runtime_s": 1.7}])
    trials = read_trials(tmp_path)
    assert trials["trial"].tolist() == [0, 1, 2]
    assert trials["runtime_s"].tolist() == [1.5, 1.6, 1.7]


def _copy_of_builtin(tmp_path: Path) -> Path:
    target = tmp_path / "mine"
    shutil.copytree(BUILTIN_DIR / "m1-pro" / "llama2-7b", target)
    return target


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda path: (path / "points.csv").write_text(""), r"points.csv: unreadable CSV"),
        (
            lambda path: (path / "points.csv").write_text(
                (path / "points.csv").read_text().splitlines()[0] + "\n"
            ),
            r"points.csv: no measured points",
        ),
        (
            lambda path: (path / "points.csv").write_text(
                (path / "points.csv").read_text().replace(",97.842,", ",lots,", 1)
            ),
            r"row 2: energy_j_mean must be a number",
        ),
        (
            lambda path: (path / "profile.json").write_text(
                (path / "profile.json").read_text().replace('"idle_power_w": 0.108', '"idle_power_w": "low"')
            ),
            r"metadata.idle_power_w: must be a number",
        ),
        (lambda path: (path / "profile.json").unlink(), r"not a profile directory \(no profile.json\)"),
    ],
)
def test_a_damaged_profile_directory_is_one_clear_error(
    tmp_path: Path, damage: Callable[[Path], object], message: str
) -> None:
    path = _copy_of_builtin(tmp_path)
    damage(path)
    with pytest.raises(HybridsimError, match=message):
        load_profile(str(path))
