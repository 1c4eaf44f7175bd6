"""Profile directories on disk: trials survive an interrupted write."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.profiles.io import append_trials, read_trials


def test_append_after_a_torn_write_keeps_every_whole_trial(tmp_path: Path) -> None:
    append_trials(tmp_path, [{"trial": 0, "runtime_s": 1.5}, {"trial": 1, "runtime_s": 1.6}])
    with (tmp_path / "trials.csv").open("a") as handle:
        handle.write("2,1.")  # the process died half-way through this line
    with pytest.warns(UserWarning, match="torn last line"):
        append_trials(tmp_path, [{"trial": 2, "runtime_s": 1.7}])
    trials = read_trials(tmp_path)
    assert trials["trial"].tolist() == [0, 1, 2]
    assert trials["runtime_s"].tolist() == [1.5, 1.6, 1.7]
