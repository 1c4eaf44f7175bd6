"""Hostile inputs for every command: the promise each must keep, and the harness that checks it.

For each generated input (a scenario with one value made hostile, random bytes as a scenario, a damaged
trace, workload table, profile or summary.json, a hostile command-line option or output path) the command
must end with exit code 2 (or 0 where the input is usable), print no traceback and at most 3 lines on
stderr, leave no partial output directory or staging folder, and change no file outside its output
directory (`check`). Commands run in this process (through `run_main`, as `hybridsim` runs them: `invoke`)
so that a few hundred inputs fit in about a minute; hypothesis is derandomized (`FUZZ`), so CI sees the
same inputs every time. The tests are split by what is hostile: the scenario (test_hostile_scenarios.py),
the files a command reads (test_hostile_data_files.py), the command line (test_hostile_options.py).
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import shutil
import signal
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, event, settings
from hypothesis.control import currently_in_test_context

from hybridsim.cli import cli
from hybridsim.core.program import run_main

FUZZ = settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

SCENARIO: dict[str, Any] = {
    "kind": "simulation",
    "seed": 3,
    "workers": 1,
    "write_requests": False,
    "cluster": {
        "m1": {"profile": "m1-pro/llama2-7b", "count": 3},
        "a100": {"profile": "swing-a100/llama2-7b", "count": 1, "queue": "shared"},
    },
    "cost_model": {"method": "interpolated", "out_of_range": "clamp"},
    "workload": {"dataset": "alpaca"},
    "max_tokens": 256,
    "arrival": {"process": "poisson", "rate": 0.2, "requests": 25},
    "policies": [
        {"name": "all-a100", "policy": "all_on", "params": {"system": "a100"}},
        {
            "name": "in-32",
            "policy": "input_threshold",
            "params": {"threshold": 32, "below": "m1", "above": "a100"},
        },
    ],
    "slo_s": 60,
    "cost": {"lam": 0.5, "reference": "a100"},
}
"""A small valid scenario: 25 requests, two policies (about half a second to run)."""

HOSTILE_VALUES = [
    math.nan,
    math.inf,
    -math.inf,
    -1,
    0,
    -0.0,
    1e-320,
    1e308,
    2**63,
    2**64,
    -(2**63) - 1,
    "abc",
    "",
    None,
    True,
    [],
    {},
    [1, 2],
    "diurnal",
]


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str


@contextmanager
def _program_state(cwd: Path) -> Iterator[None]:
    """Whatever `run_main` and a command change in this process, put back afterwards."""
    saved = (sys.argv, os.getcwd(), signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP))
    os.chdir(cwd)
    try:
        with warnings.catch_warnings():
            yield
    finally:
        sys.argv = saved[0]
        os.chdir(saved[1])
        signal.signal(signal.SIGTERM, saved[2])
        signal.signal(signal.SIGHUP, saved[3])


def invoke(cwd: Path, *args: str) -> Outcome:
    """`hybridsim ARGS` in `cwd`, in this process; an exception escaping `run_main` fails the test."""
    stdout, stderr = io.StringIO(), io.StringIO()
    code: Any = 0
    with _program_state(cwd), redirect_stdout(stdout), redirect_stderr(stderr):
        sys.argv = ["hybridsim", *args]
        try:
            run_main(cli, "hybridsim")
        except SystemExit as exit_:
            code = exit_.code
    return Outcome(int(code or 0), stdout.getvalue(), stderr.getvalue())


def snapshot(root: Path, skip: Path | None = None) -> dict[str, str]:
    found = {}
    for path in sorted(root.rglob("*")):
        if skip is not None and (path == skip or skip in path.parents):
            continue
        found[str(path.relative_to(root))] = (
            hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        )
    return found


def check(outcome: Outcome, workspace: Path, before: dict[str, str], out: Path | None) -> None:
    """The promise, for one command on one input."""
    assert outcome.code in (0, 2), outcome
    if currently_in_test_context():
        event(f"exit {outcome.code}")  # --hypothesis-show-statistics: how many inputs were accepted
    assert "Traceback" not in outcome.stderr, outcome.stderr
    assert len(outcome.stderr.splitlines()) <= 3, outcome.stderr
    if outcome.code == 2:
        assert outcome.stderr.splitlines()[-1].startswith("error: "), outcome.stderr
    if out is not None and outcome.code == 2 and str(out) not in before and out.name not in before:
        assert not out.exists(), "a refused command left a partial output directory"
    if out is not None and outcome.code == 0:
        assert out.exists()
    leftovers = [p.name for p in workspace.rglob(".*") if ".staging-" in p.name or ".old-" in p.name]
    assert not leftovers, leftovers
    outside = {
        name: value for name, value in before.items() if out is None or not _under(workspace / name, out)
    }
    assert snapshot(workspace, skip=out) == outside, "a file outside the output directory changed"


def _under(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


@contextmanager
def workspace() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="hostile-"))
    try:
        (folder / "keep.txt").write_text("a file of the user's, next to the scenario\n")
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
