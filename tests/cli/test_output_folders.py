"""`--out` never costs a user a file: foreign folders are refused, dangerous places too, and with
`--overwrite` only hybridsim's own files are written or removed. Checked byte for byte."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import warnings
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from hybridsim.core.atomic import clean_stale, staged_directory
from hybridsim.core.errors import HybridsimError
from hybridsim.core.output_guard import MARKER, check_output_path, read_marker

SCENARIO = """\
kind: simulation
seed: 3
workers: 1
cluster:
  m1: {profile: m1-pro/llama2-7b, count: 4}
  a100: {profile: swing-a100/llama2-7b, count: 1, queue: shared}
cost_model: {method: interpolated, out_of_range: clamp}
workload: {dataset: alpaca}
arrival: {process: poisson, rate: 0.2, requests: 40}
policies:
  - {name: all-a100, policy: all_on, params: {system: a100}}
"""


def hybridsim(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from hybridsim.cli import main; main()", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=180,
        env={**os.environ, "HOME": str(cwd / "home")},
    )


def in_process(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The same command run in this process (no interpreter start-up): what `hybridsim` would print."""
    from hybridsim.cli import cli
    from hybridsim.core.program import run_main

    stdout, stderr, code = io.StringIO(), io.StringIO(), 0
    saved = (sys.argv, os.getcwd(), signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP))
    os.chdir(cwd)
    sys.argv = ["hybridsim", *args]
    try:
        with warnings.catch_warnings(), redirect_stdout(stdout), redirect_stderr(stderr):
            try:
                run_main(cli, "hybridsim")
            except SystemExit as exit_:
                code = int(exit_.code or 0)
    finally:
        sys.argv = saved[0]
        os.chdir(saved[1])
        signal.signal(signal.SIGTERM, saved[2])
        signal.signal(signal.SIGHUP, saved[3])
    return subprocess.CompletedProcess(list(args), code, stdout.getvalue(), stderr.getvalue())


def snapshot(root: Path) -> dict[str, str]:
    """Every file under `root` (relative path -> sha256 of its bytes)."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def user_files(folder: Path) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "paper.tex").write_text("\\section{Results}\n")
    (folder / "data").mkdir()
    (folder / "data" / "measurements.csv").write_bytes(os.urandom(256))
    (folder / ".hidden").write_text("secret")
    return snapshot(folder)


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # for the commands run in this process
    (tmp_path / "home").mkdir()
    (tmp_path / "s.yaml").write_text(SCENARIO)
    return tmp_path


def test_run_into_a_folder_of_user_files_is_refused_and_deletes_nothing(workspace: Path) -> None:
    before = user_files(workspace / "papers")
    done = hybridsim("run", "s.yaml", "--out", "papers", cwd=workspace)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "holds files hybridsim did not write" in done.stderr
    assert "--overwrite" in done.stderr
    assert snapshot(workspace / "papers") == before
    assert sorted(p.name for p in workspace.iterdir()) == ["home", "papers", "s.yaml"]  # no staging left


def test_overwrite_writes_beside_user_files_and_never_over_them(workspace: Path) -> None:
    before = user_files(workspace / "papers")
    done = in_process("run", "s.yaml", "--out", "papers", "--overwrite", cwd=workspace)
    assert done.returncode == 0, done.stderr
    after = snapshot(workspace / "papers")
    assert {name: after[name] for name in before} == before  # every user file, byte for byte
    kind, files = read_marker(workspace / "papers")  # type: ignore[misc]
    assert kind == "run" and "summary.json" in files and "paper.tex" not in files
    assert set(after) == set(before) | set(files) | {MARKER}
    # A second run replaces only its own files (now the folder is a run output), the user's stay.
    done = in_process("run", "s.yaml", "--out", "papers", "--seed", "4", cwd=workspace)
    assert done.returncode == 0, done.stderr
    again = snapshot(workspace / "papers")
    assert {name: again[name] for name in before} == before
    assert json.loads((workspace / "papers" / "summary.json").read_text())["seed"] == 4


def test_overwrite_refuses_a_user_file_with_the_name_of_one_hybridsim_writes(workspace: Path) -> None:
    before = user_files(workspace / "papers")
    (workspace / "papers" / "summary.json").write_text("my own summary")
    before["summary.json"] = snapshot(workspace / "papers")["summary.json"]
    done = in_process("run", "s.yaml", "--out", "papers", "--overwrite", cwd=workspace)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "your file summary.json" in done.stderr
    assert snapshot(workspace / "papers") == before


@pytest.mark.parametrize("out", [".", "", "home", "/", "/proc/hybridsim", "s.yaml/inside", "s.yaml", ".."])
def test_places_no_output_may_take_are_refused_and_nothing_changes(workspace: Path, out: str) -> None:
    before = snapshot(workspace)
    done = in_process("run", "s.yaml", "--out", out, cwd=workspace)
    assert done.returncode == 2, done.stdout
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: --out")
    assert snapshot(workspace) == before
    assert sorted(p.name for p in workspace.iterdir()) == ["home", "s.yaml"]


def test_the_working_directory_full_of_user_files_survives_byte_for_byte(workspace: Path) -> None:
    user_files(workspace / "work")
    (workspace / "work" / "s.yaml").write_text(SCENARIO)
    before = snapshot(workspace / "work")
    for k, args in enumerate(
        (["--out", "."], ["--out", str(workspace / "work")], ["--out", ".", "--overwrite"])
    ):
        command = hybridsim if k == 0 else in_process  # once as a real program, then in this process
        done = command("run", "s.yaml", *args, cwd=workspace / "work")
        assert done.returncode == 2 and "working directory" in done.stderr, done.stderr
        assert snapshot(workspace / "work") == before


def test_compare_out_follows_the_same_rule(workspace: Path) -> None:
    assert in_process("run", "s.yaml", "--out", "r1", cwd=workspace).returncode == 0
    before = user_files(workspace / "papers")
    refused = in_process("compare", "r1", "--out", "papers", cwd=workspace)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert snapshot(workspace / "papers") == before
    into_run = in_process("compare", "r1", "--out", "r1", cwd=workspace)  # a run folder is not a compare one
    assert into_run.returncode == 2 and "a hybridsim run output" in into_run.stderr
    done = in_process("compare", "r1", "--out", "cmp", cwd=workspace)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (workspace / "cmp").iterdir()) == [MARKER, "compare.csv", "compare.png"]
    assert in_process("compare", "r1", "--out", "cmp", cwd=workspace).returncode == 0  # its own: replaced


def test_a_plot_never_replaces_an_existing_file_without_overwrite(workspace: Path) -> None:
    (workspace / "fig.png").write_bytes(b"my figure")
    done = in_process("profiles", "show", "m1-pro/llama2-7b", "--plot", "fig.png", cwd=workspace)
    assert done.returncode == 2 and "--overwrite" in done.stderr
    assert (workspace / "fig.png").read_bytes() == b"my figure"
    done = in_process("workload", "show", "alpaca", "--plot", "fig.png", cwd=workspace)
    assert done.returncode == 2 and (workspace / "fig.png").read_bytes() == b"my figure"


def test_an_unwritable_place_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("hybridsim.core.output_guard.os.access", lambda *args: False)
    with pytest.raises(HybridsimError, match="not writable"):
        check_output_path(tmp_path / "out")


def test_a_full_disk_half_way_leaves_nothing_and_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with staged_directory(tmp_path / "run") as staging:
        (staging / "summary.json").write_text("old results")
    before = snapshot(tmp_path)
    with (
        pytest.raises(HybridsimError, match=r"cannot write the results: No space left on device"),
        staged_directory(tmp_path / "run") as staging,
    ):
        (staging / "half.json").write_text("{")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert snapshot(tmp_path) == before  # old results intact, no staging folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_what_a_killed_run_left_is_cleaned_and_a_lost_result_restored(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    pid = int(dead.stdout)  # a process that has exited
    stale = tmp_path / f".run.staging-{pid}-abc"
    stale.mkdir()
    (stale / "requests.parquet").write_bytes(b"x" * 100)
    mine = tmp_path / f".run.staging-{os.getpid()}-live"  # a live run's folder is left alone
    mine.mkdir()
    old = tmp_path / f".run.old-{pid}"  # killed between the two renames: the previous result
    old.mkdir()
    (old / "summary.json").write_text("previous")
    with pytest.warns(UserWarning):
        removed = clean_stale(tmp_path / "run")
    assert removed == [stale] and mine.exists()
    assert (tmp_path / "run" / "summary.json").read_text() == "previous"


def test_a_marker_cannot_make_hybridsim_delete_outside_its_folder(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    (tmp_path / "precious.txt").write_text("keep")
    (folder / MARKER).write_text(json.dumps({"kind": "run", "files": ["../precious.txt"]}))
    assert read_marker(folder) is None  # an unsafe marker is no marker: the folder counts as foreign
    with pytest.raises(HybridsimError, match="did not write"), staged_directory(folder):
        pass
    assert (tmp_path / "precious.txt").read_text() == "keep"


def test_a_run_folder_from_before_the_marker_is_replaced_only_with_overwrite(tmp_path: Path) -> None:
    legacy = tmp_path / "run"
    legacy.mkdir()
    (legacy / "summary.json").write_text("{}")
    (legacy / "scenario.resolved.yaml").write_text("kind: simulation\n")
    (legacy / "notes.md").write_text("mine")
    with (
        pytest.raises(HybridsimError, match="written before hybridsim marked its folders"),
        staged_directory(legacy),
    ):
        pass
    with staged_directory(legacy, overwrite=True) as staging:
        (staging / "summary.json").write_text('{"new": 1}')
        (staging / "scenario.resolved.yaml").write_text("kind: simulation\n")
    assert (legacy / "summary.json").read_text() == '{"new": 1}' and (
        legacy / "notes.md"
    ).read_text() == "mine"
