"""Hostile inputs for every command, generated: the program's promise must hold for all of them.

For each generated input (a scenario with one value made hostile, random bytes as a scenario, a damaged
trace, workload table, profile or summary.json, a hostile command-line option or output path) the command
must end with exit code 2 (or 0 where the input is usable), print no traceback and at most 3 lines on
stderr, leave no partial output directory or staging folder, and change no file outside its output
directory. Commands run in this process (through `run_main`, as `hybridsim` runs them) so that a few
hundred inputs fit in about a minute; hypothesis is derandomized, so CI sees the same inputs every time.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import io
import json
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

import pytest
import yaml
from hybridsim.simulator.profiles.registry import BUILTIN_DIR
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
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
SCENARIO_PATHS = [
    "seed",
    "max_tokens",
    "slo_s",
    "cost.lam",
    "cost.reference",
    "arrival.rate",
    "arrival.requests",
    "arrival.warmup_s",
    "arrival.process",
    "arrival.phase_s",
    "arrival.period_s",
    "arrival.amplitude",
    "arrival.duration_s",
    "arrival.cv",
    "cluster.m1.count",
    "cluster.m1.idle_power_w",
    "cluster.m1.max_batch",
    "cluster.m1.batch_runtime_growth",
    "cluster.a100.queue",
    "cluster.a100.power_cap",
    "workload.requests",
    "workload.max_input_tokens",
    "workload.dataset",
    "policies.1.params.threshold",
    "policies.0.policy",
    "predictor.noise",
    "sweep",
    "kind",
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


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real run directory (for `compare`)."""
    root = tmp_path_factory.mktemp("finished")
    (root / "s.yaml").write_text(yaml.safe_dump(SCENARIO))
    outcome = invoke(root, "run", "s.yaml", "--out", "run")
    assert outcome.code == 0, outcome.stderr
    return root / "run"


@contextmanager
def workspace() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="hostile-"))
    try:
        (folder / "keep.txt").write_text("a file of the user's, next to the scenario\n")
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _set(data: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node: Any = data
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    if isinstance(node, list):
        node[int(parts[-1])] = value
    else:
        node[parts[-1]] = value


@settings(FUZZ, max_examples=100)
@given(
    st.lists(
        st.tuples(st.sampled_from(SCENARIO_PATHS), st.sampled_from(HOSTILE_VALUES)), min_size=1, max_size=3
    )
)
def test_scenario_with_hostile_values(changes: list[tuple[str, Any]]) -> None:
    data = copy.deepcopy(SCENARIO)
    for path, value in changes:
        _set(data, path, value)
    with workspace() as folder:
        (folder / "s.yaml").write_text(yaml.safe_dump(data))
        before = snapshot(folder)
        check(invoke(folder, "run", "s.yaml", "--out", "out"), folder, before, folder / "out")


YAML_TRAPS = [
    "kind: simulation\nseed: 1\nseed: 2\n",  # duplicate key
    "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
    "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
    "g: [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\nkind: simulation\n",  # an alias bomb (10^7 values)
    "[" * 5000,
    "kind: !!python/object/apply:os.system ['echo pwned']\n",
    "\ufeffkind: simulation\n",
    "kind: threshold-sweep\nthresholds: [1, 99999999999999999999]\n",
]


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=200),
        st.text(max_size=200).map(str.encode),
        st.sampled_from(YAML_TRAPS).map(str.encode),
    )
)
def test_scenario_file_of_hostile_bytes(content: bytes) -> None:
    with workspace() as folder:
        (folder / "s.yaml").write_bytes(content)
        before = snapshot(folder)
        outcome = invoke(folder, "run", "s.yaml", "--out", "out")
        check(outcome, folder, before, folder / "out")
        assert outcome.code == 2


CELLS = st.one_of(
    st.sampled_from(["nan", "inf", "-inf", "-1", "0", "", "1e400", "9223372036854775808", "abc", "1.5", '"']),
    st.integers(min_value=-(2**64), max_value=2**64).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)


@FUZZ
@given(st.lists(st.tuples(CELLS, CELLS, CELLS), min_size=0, max_size=6), st.booleans())
def test_hostile_trace(rows: list[tuple[str, str, str]], with_tokens: bool) -> None:
    data = copy.deepcopy(SCENARIO)
    data["arrival"] = {"process": "trace", "trace": "trace.csv"}
    with workspace() as folder:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["timestamp", "input_tokens", "output_tokens"] if with_tokens else ["timestamp"])
        writer.writerows([row if with_tokens else row[:1] for row in rows])
        (folder / "trace.csv").write_text(buffer.getvalue())
        (folder / "s.yaml").write_text(yaml.safe_dump(data))
        before = snapshot(folder)
        check(invoke(folder, "run", "s.yaml", "--out", "out"), folder, before, folder / "out")


POINT_COLUMNS = [
    "input_tokens",
    "output_tokens",
    "runtime_s_mean",
    "energy_j_mean",
    "gpu_energy_j_mean",
    "n_trials",
]


@FUZZ
@given(st.sampled_from(POINT_COLUMNS), st.integers(min_value=0, max_value=15), CELLS)
def test_damaged_profile(column: str, row: int, value: str) -> None:
    with workspace() as folder:
        profile = folder / "m1"
        shutil.copytree(BUILTIN_DIR / "m1-pro" / "llama2-7b", profile)
        points = (profile / "points.csv").read_text().splitlines()
        header = points[0].split(",")
        cells = points[1 + row % (len(points) - 1)].split(",")
        cells[header.index(column)] = value
        points[1 + row % (len(points) - 1)] = ",".join(cells)
        (profile / "points.csv").write_text("\n".join(points) + "\n")
        before = snapshot(folder)
        # the absolute path is new for every example: profiles are cached by name in a process
        check(invoke(folder, "profiles", "show", str(profile)), folder, before, None)


@FUZZ
@given(st.lists(st.tuples(CELLS, CELLS, CELLS), min_size=0, max_size=5))
def test_hostile_workload_table(rows: list[tuple[str, str, str]]) -> None:
    with workspace() as folder:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["input_tokens", "output_tokens", "count"])
        writer.writerows(rows)
        (folder / "w.csv").write_text(buffer.getvalue())
        before = snapshot(folder)
        check(invoke(folder, "workload", "show", "w.csv"), folder, before, None)


SUMMARY_PATHS = [
    "runs",
    "runs.0",
    "runs.0.energy",
    "runs.0.energy.total_kwh",
    "runs.0.energy.total_j",
    "runs.0.latency_s",
    "runs.0.latency_s.p99",
    "runs.0.systems",
    "runs.0.policy",
    "runs.0.cost_u",
    "runs.0.requests",
    "kind",
    "sweep",
]


@FUZZ
@given(st.sampled_from(SUMMARY_PATHS), st.sampled_from([*HOSTILE_VALUES, "DELETE"]))
def test_compare_of_a_damaged_summary(finished_run: Path, path: str, value: Any) -> None:
    summary = json.loads((finished_run / "summary.json").read_text())
    parts = path.split(".")
    node: Any = summary
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    key: Any = int(parts[-1]) if isinstance(node, list) else parts[-1]
    if value == "DELETE":
        del node[key]
    else:
        node[key] = value
    with workspace() as folder:
        (folder / "run").mkdir()
        (folder / "run" / "summary.json").write_text(
            json.dumps(summary)
        )  # NaN and Infinity as Python writes them
        before = snapshot(folder)
        check(invoke(folder, "compare", "run", "--out", "cmp"), folder, before, folder / "cmp")


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


# -- the named cases of the issue, each with the line it must print ------------------------------------------

USER_POLICIES = """\
class Raises:
    def route(self, request, view):
        return 1 / 0

class BadInit:
    def __init__(self, weight=1.0):
        raise RuntimeError("no weights file")

    def route(self, request, view):
        return None

class NotANode:
    def route(self, request, view):
        return "a100"
"""


def _scenario_with(**changes: Any) -> str:
    data = copy.deepcopy(SCENARIO)
    for path, value in changes.items():
        _set(data, path.replace("__", "."), value)
    return yaml.safe_dump(data)


NAMED_CASES: list[tuple[str, dict[str, str], str]] = [
    (
        "diurnal phase .nan ends at once",
        {
            "s.yaml": _scenario_with(
                arrival={"process": "diurnal", "rate": 0.2, "requests": 25, "phase_s": math.nan}
            )
        },
        "arrival.phase_s: nan is not a finite number",
    ),
    (
        "seed beyond int64",
        {"s.yaml": _scenario_with(seed=2**64)},
        "seed: 18446744073709551616 is beyond int64",
    ),
    (
        "requests beyond memory",
        {"s.yaml": _scenario_with(arrival__requests=10**9)},
        "less than or equal to 50000000",
    ),
    ("duplicate key", {"s.yaml": _scenario_with() + "seed: 9\n"}, "malformed YAML: duplicate key 'seed'"),
    ("alias bomb", {"s.yaml": YAML_TRAPS[1]}, "aliases expand to more than 1,000,000 values"),
    ("binary scenario", {"s.yaml": "\udcff"}, "not a UTF-8 text file"),
    (
        "negative trace time",
        {
            "s.yaml": _scenario_with(arrival={"process": "trace", "trace": "t.csv"}),
            "t.csv": "timestamp\n0\n-5\n",
        },
        "row 3: -5 is negative",
    ),
    (
        "token count beyond int64 in a trace",
        {
            "s.yaml": _scenario_with(arrival={"process": "trace", "trace": "t.csv"}),
            "t.csv": "timestamp,input_tokens,output_tokens\n0,8,9223372036854775808\n",
        },
        "output_tokens must be an integer >= 1 and <= 1,048,576",
    ),
    (
        "user policy whose route raises",
        {
            "s.yaml": _scenario_with(policies__0={"policy": "hostile_policies:Raises"}),
            "hostile_policies.py": USER_POLICIES,
        },
        "Raises.route raised ZeroDivisionError: division by zero",
    ),
    (
        "user policy whose constructor raises",
        {
            "s.yaml": _scenario_with(policies__0={"policy": "hostile_policies:BadInit"}),
            "hostile_policies.py": USER_POLICIES,
        },
        "BadInit() raised RuntimeError: no weights file",
    ),
    (
        "user policy that answers with no node",
        {
            "s.yaml": _scenario_with(policies__0={"policy": "hostile_policies:NotANode"}),
            "hostile_policies.py": USER_POLICIES,
        },
        "NotANode.route returned str, not a node",
    ),
]


@pytest.mark.parametrize(
    ("files", "message"), [case[1:] for case in NAMED_CASES], ids=[c[0] for c in NAMED_CASES]
)
def test_named_hostile_inputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: dict[str, str], message: str
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_bytes(text.encode("utf-8", "surrogateescape"))
    monkeypatch.syspath_prepend(str(tmp_path))  # the user's policy module, as PYTHONPATH would give it
    before = snapshot(tmp_path)
    outcome = invoke(tmp_path, "run", "s.yaml", "--out", "out")
    check(outcome, tmp_path, before, tmp_path / "out")
    assert outcome.code == 2 and message in outcome.stderr, outcome.stderr


def test_unsorted_trace_rows_are_replayed_sorted_with_one_warning(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(_scenario_with(arrival={"process": "trace", "trace": "t.csv"}))
    (tmp_path / "t.csv").write_text("timestamp\n0\n30\n10\n50\n")
    outcome = invoke(tmp_path, "run", "s.yaml", "--out", "out")
    assert outcome.code == 0, outcome.stderr
    assert outcome.stderr.splitlines() == [
        f"warning: arrival.trace: {tmp_path / 't.csv'}: 1 rows are earlier than the row before them; "
        "replaying the trace sorted by time"
    ]


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("energy_j_mean", "-3", "energy_j_mean must be a finite number >= 0 in a measured row"),
        ("runtime_s_mean", "0", "runtime_s_mean must be a finite number > 0"),
        ("runtime_s_mean", "nan", "runtime_s_mean must be a finite number > 0"),
        ("energy_j_mean", "inf", "energy_j_mean is infinite"),
        ("input_tokens", "9223372036854775808", "input_tokens must be a whole number from 1 to 1,048,576"),
        ("cpu_energy_j_mean", "-3", None),  # a component below zero (idle subtracted): accepted
    ],
)
def test_damaged_profile_cells(tmp_path: Path, column: str, value: str, message: str | None) -> None:
    profile = tmp_path / "p"
    shutil.copytree(BUILTIN_DIR / "m1-pro" / "llama2-7b", profile)
    lines = (profile / "points.csv").read_text().splitlines()
    cells = lines[2].split(",")
    cells[lines[0].split(",").index(column)] = value
    lines[2] = ",".join(cells)
    (profile / "points.csv").write_text("\n".join(lines) + "\n")
    outcome = invoke(tmp_path, "profiles", "show", str(profile))
    if message is None:
        assert outcome.code == 0 and outcome.stderr == ""
    else:
        assert outcome.code == 2 and outcome.stderr.count("\n") == 1
        assert f"{profile / 'points.csv'}: row 3: {message}" in outcome.stderr, outcome.stderr
