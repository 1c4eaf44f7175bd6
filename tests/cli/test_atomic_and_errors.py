"""The edge of the program: one-line errors with exit code 2, and outputs that appear whole or not at all."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from conftest import CliRun

from hybridsim.core.atomic import staged_directory, write_text_atomic
from hybridsim.core.errors import HybridsimError
from hybridsim.core.output_guard import MARKER


def test_staged_directory_leaves_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "run"
    with pytest.raises(RuntimeError), staged_directory(target) as staging:
        (staging / "half.json").write_text("{")
        raise RuntimeError("crash half-way")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_staged_directory_replaces_previous_result_whole(tmp_path: Path) -> None:
    target = tmp_path / "run"
    with staged_directory(target) as staging:
        (staging / "old.txt").write_text("old")
    with staged_directory(target) as staging:
        (staging / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == [MARKER, "new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_staged_directory_refuses_to_overwrite_when_asked(tmp_path: Path) -> None:
    with staged_directory(tmp_path / "run") as staging:
        (staging / "old.txt").write_text("old")
    with (
        pytest.raises(HybridsimError, match=r"exists and may not be replaced \(--no-overwrite\)"),
        staged_directory(tmp_path / "run", replace=False),
    ):
        pass


def test_a_run_directory_gets_ordinary_permissions(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        with staged_directory(tmp_path / "run") as staging:
            (staging / "summary.json").write_text("{}")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "run").stat().st_mode) == 0o755  # not mkdtemp's owner-only 0700


def test_write_text_atomic_keeps_old_content_on_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "a.txt"
    write_text_atomic(path, "first")

    def failing_replace(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("hybridsim.core.atomic.os.replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        write_text_atomic(path, "second")
    assert path.read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("kind: [unclosed\n", "malformed YAML"),
        ("- just\n- a list\n", "must be a YAML mapping"),
        ("kind: nonsense\n", "kind: unknown scenario kind 'nonsense'"),
    ],
)
def test_bad_scenarios_end_in_one_line_and_exit_2(
    hybridsim: CliRun, tmp_path: Path, content: str, expected: str
) -> None:
    scenario = tmp_path / "bad.yaml"
    scenario.write_text(content)
    out = tmp_path / "out"
    result = hybridsim("run", str(scenario), "--out", str(out))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]
    assert str(scenario) in lines[0]
    assert not out.exists()


def test_missing_scenario_file(hybridsim: CliRun, tmp_path: Path) -> None:
    result = hybridsim("run", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "scenario file not found" in result.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), "hybridsim run: Missing argument 'SCENARIO'"),
        (("x.yaml", "--bogus"), "No such option '--bogus'"),
    ],
)
def test_usage_errors_are_one_line_too(
    hybridsim: CliRun, tmp_path: Path, args: tuple[str, ...], expected: str
) -> None:
    result = hybridsim("run", *args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and expected in result.stderr


def test_warnings_are_one_line_each_and_not_repeated_per_worker(hybridsim: CliRun, tmp_path: Path) -> None:
    scenario = tmp_path / "paper.yaml"
    scenario.write_text(
        "kind: simulation\nseed: 1\n"
        "cluster: {m1: {profile: m1-pro/llama2-7b, count: 4}, a100: {profile: swing-a100/llama2-7b, count: "
        "1}}\n"
        "cost_model: {method: paper, out_of_range: clamp}\n"
        "workload: {dataset: alpaca}\narrival: {process: poisson, rate: 0.2, requests: 100}\n"
        "policies: [{policy: all_on, params: {system: a100}}, {policy: round_robin}]\n"
        "sweep: {parameter: arrival.rate, values: [0.1, 0.2]}\nworkers: 2\nwrite_requests: false\n"
    )
    result = hybridsim("run", str(scenario), "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2, result.stderr  # one per profile, though 4 runs in 2 workers built the models
    assert all(line.startswith("warning: profile ") and "'paper' cost model" in line for line in lines)
