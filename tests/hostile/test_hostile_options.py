"""Hostile command lines: every numeric option of `calibrate` given a value it must refuse, and output paths
that are not the command's to write (the current folder, the root, a user's file or folder, the home
directory) for `run`, `compare`, `calibrate` and `profiles show --plot`. The promise and the harness:
hostile_harness.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hostile_harness import FUZZ, SCENARIO, check, invoke, snapshot, workspace
from hybridsim.simulator.plan import backends
from hybridsim.simulator.scenario.workers import WorkerPool
from hypothesis import given
from hypothesis import strategies as st

OPTION_VALUES = ["nan", "inf", "-inf", "-1", "-0.5", "1e400", "abc", ""]
"""Refused by every option below (a huge but finite --time-budget-s would be a valid, long calibration)."""
CALIBRATE_OPTIONS = [
    "--seed",
    "--tdp-w",
    "--idle-s",
    "--ci-halfwidth",
    "--time-budget-s",
    "--batch-size",
    "--min-trials",
    "--fixed-input",
    "--input-tokens",
    "--max-output",
]


@FUZZ
@given(st.sampled_from(CALIBRATE_OPTIONS), st.sampled_from(OPTION_VALUES))
def test_calibrate_with_a_hostile_option(option: str, value: str) -> None:
    with workspace() as folder:
        before = snapshot(folder)
        meter = "estimated" if option != "--idle-s" else "rapl"
        # an --out no run may take stops a run that wrongly accepted the value before any model is built
        args = ["--arch", "tiny-llama", "--meter", meter, "--out", "/proc/cal", option, value]
        outcome = invoke(folder, "calibrate", *args)
        check(outcome, folder, before, None)
        assert outcome.code == 2 and option in outcome.stderr, outcome


OUT_PATHS = [".", "", "..", "/", "/proc/x", "/sys/x", "keep.txt", "keep.txt/sub", "papers", "HOME", "\0x"]


@FUZZ
@given(st.sampled_from(OUT_PATHS), st.sampled_from(["run", "compare", "calibrate", "plot"]), st.booleans())
def test_hostile_output_paths(out: str, command: str, overwrite: bool) -> None:
    with workspace() as folder:
        (folder / "papers").mkdir()
        (folder / "papers" / "thesis.tex").write_text("years of work")
        (folder / "s.yaml").write_text(yaml.safe_dump(SCENARIO))
        (folder / "r").mkdir()
        (folder / "r" / "summary.json").write_text("{}")
        out = str(Path.home()) if out == "HOME" else out
        before = snapshot(folder)
        flag = ["--overwrite"] if overwrite else []
        args = {
            "run": ["run", "s.yaml", "--out", out, *flag],
            "compare": ["compare", "r", "--out", out, *flag],
            "calibrate": ["calibrate", "--arch", "tiny-llama", "--meter", "estimated", "--out", out, *flag],
            "plot": ["profiles", "show", "m1-pro/llama2-7b", "--plot", out, *flag],
        }[command]
        if command == "calibrate" and out == "papers" and overwrite:  # accepted: stop it at the meter
            args[args.index("estimated")] = "uprof"
            args[1:1] = ["--uprof-csv", "missing.csv"]  # refused after --out is checked, before any model
        outcome = invoke(folder, *args)
        assert "Traceback" not in outcome.stderr and len(outcome.stderr.splitlines()) <= 3
        if out == "papers":  # the user's folder, with or without --overwrite: their file is untouched
            assert (folder / "papers" / "thesis.tex").read_text() == "years of work"
            assert outcome.code == (0 if overwrite and command == "run" else 2), outcome
            check(outcome, folder, before, folder / "papers")
        else:
            assert outcome.code == 2, outcome  # every other place is refused
            check(outcome, folder, before, None)


# -- found by a generated campaign: an absurd worker count for a plan ------------------------------------


@pytest.mark.parametrize("where", ["--workers", "execution.workers"])
def test_a_plan_starts_no_more_workers_than_it_has_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """`--workers 9223372036854775807` once forked processes until the machine gave out (a pool of that
    size); a plan's pool is now no larger than its largest batch of runs."""
    sizes: list[int] = []

    class Recorded(WorkerPool):
        def __init__(self, workers: int) -> None:
            sizes.append(workers)
            assert workers <= 8, f"a pool of {workers} processes"  # before forking a single one
            super().__init__(workers)

    monkeypatch.setattr(backends, "WorkerPool", Recorded)
    huge = 2**63 - 1
    plan = {
        "kind": "plan",
        "base": SCENARIO,
        "space": {"cluster.a100.count": [1, 2, 3]},
        "policies": SCENARIO["policies"][:1],
        "search": {"method": "grid"},
        "execution": {"workers": huge} if where == "execution.workers" else {},
    }
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(plan))
    flags = ["--workers", str(huge)] if where == "--workers" else []
    outcome = invoke(tmp_path, "run", "p.yaml", "--out", "out", *flags)
    assert outcome.code == 0, outcome.stderr
    assert sizes == [2]  # the first candidate runs alone (it checks the constraints), then the other two


NOT_UTF8 = "r\udcff"
"""A folder name holding the byte 0xff, as Python hands it over from a command line (surrogateescape)."""


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["run", "s.yaml", "--out", "dangling"],
            2,
            "--out dangling: is a symbolic link to nowhere, which does",
        ),
        (
            [],
            2,
            "hybridsim: name a command: run, compare, profiles, workload, calibrate",
        ),  # was the help, as error
        (["profiles"], 2, "hybridsim profiles: name a command: import-splitwise2024"),
        (["run", "s.yaml", "--out", NOT_UTF8], 0, ""),  # pyarrow refused the path (UnicodeEncodeError)
        (["run", "s.yaml", "--out", "x/" * 1100 + "y"], 2, "folders deep; at most 256"),  # RecursionError
        (["workload", "show", "alpaca", "--plot", "x/" * 1100 + "p.png"], 2, "folders deep; at most 256"),
    ],
    ids=["dangling-link", "no-command", "no-sub-command", "bytes-in-out", "deep-out", "deep-plot"],
)
def test_named_hostile_command_lines(tmp_path: Path, args: list[str], code: int, message: str) -> None:
    data = {**SCENARIO, "write_requests": True}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(data))
    (tmp_path / "dangling").symlink_to("nowhere")  # was a NotADirectoryError from the final rename
    before = snapshot(tmp_path)
    out = tmp_path / args[args.index("--out") + 1] if "--out" in args else None
    outcome = invoke(tmp_path, *args)
    check(outcome, tmp_path, before, out)
    assert outcome.code == code and message in outcome.stderr, outcome
    if args and args[-1] == NOT_UTF8:  # and its run compares (pandas' arrow strings refused the name)
        outcome = invoke(tmp_path, "compare", NOT_UTF8, "--out", "c" + NOT_UTF8)
        assert outcome.code == 0 and "r\ufffd" in outcome.stdout, outcome


def test_a_path_that_is_not_utf8_prints_on_a_strict_terminal(tmp_path: Path) -> None:
    """A UTF-8 desktop locale makes Python's stdout strict: printing `results: \\xff/summary.json` raised
    UnicodeEncodeError after the run was written (a traceback, exit 1)."""
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(SCENARIO))
    done = subprocess.run(
        [sys.executable, "-c", "from hybridsim.cli import main; main()", "run", "s.yaml", "--out", NOT_UTF8],
        cwd=tmp_path,
        capture_output=True,
        env={**os.environ, "PYTHONIOENCODING": "utf-8:strict", "PYTHONUTF8": "0"},
        timeout=300,
    )
    assert done.returncode == 0 and done.stderr == b"", done.stderr.decode(errors="replace")
    assert b"results: r\\udcff/summary.json" in done.stdout
