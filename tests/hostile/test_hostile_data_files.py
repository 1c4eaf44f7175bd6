"""Hostile files a command reads besides the scenario: an arrival trace (`run`), a profile's points.csv
(`profiles show`), a workload table (`workload show`) and a run's summary.json (`compare`). The promise and
the harness: hostile_harness.py.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from hostile_harness import FUZZ, HOSTILE_VALUES, SCENARIO, check, invoke, snapshot, workspace
from hybridsim.simulator.profiles.registry import BUILTIN_DIR
from hypothesis import given
from hypothesis import strategies as st

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


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real run directory (for `compare`)."""
    root = tmp_path_factory.mktemp("finished")
    (root / "s.yaml").write_text(yaml.safe_dump(SCENARIO))
    outcome = invoke(root, "run", "s.yaml", "--out", "run")
    assert outcome.code == 0, outcome.stderr
    return root / "run"


SUMMARY_PATHS = [
    "runs",
    "runs.0",
    "runs.0.energy",
    "runs.0.energy.total_kwh",
    "runs.0.energy.total_j",
    "runs.0.latency_s",
    "runs.0.latency_s.p99",
    "runs.0.systems",
    "runs.0.systems.a100.utilisation",
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


BIG = "1" * 400
"""An integer pandas keeps as a Python int (beyond uint64): pd.to_numeric raised OverflowError on it."""


def _serving_profile(folder: Path, cell: str) -> list[str]:
    profile = folder / "p"
    shutil.copytree(BUILTIN_DIR / "splitwise-a100" / "llama2-70b-tp8", profile)
    lines = (profile / "serving_decode.csv").read_text().splitlines()
    lines[1] = ",".join([lines[1].split(",")[0], cell, *lines[1].split(",")[2:]])
    (profile / "serving_decode.csv").write_text("\n".join(lines) + "\n")
    return ["profiles", "show", str(profile)]


@pytest.mark.parametrize(
    ("files", "args", "message"),
    [
        (
            {
                "t.csv": f"timestamp\n0\n{BIG}\n",
                "s.yaml": {"arrival": {"process": "trace", "trace": "t.csv"}},
            },
            ["run", "s.yaml", "--out", "out"],
            "timestamp: row 3: '1111",
        ),
        (
            {
                "t.csv": f"timestamp,input_tokens,output_tokens\n0,{BIG},3\n",
                "s.yaml": {"arrival": {"trace": "t.csv"}},
            },
            ["run", "s.yaml", "--out", "out"],
            "row 2: input_tokens must be an integer >= 1 and <= 1,048,576",
        ),
        (
            {"w.csv": f"input_tokens,output_tokens,count\n3,{BIG},1\n"},
            ["workload", "show", "w.csv"],
            "output_tokens",
        ),
        ({}, "serving", "serving_decode.csv"),
        (  # a histogram whose records no memory holds one by one: was a 14.6 TiB allocation
            {"w.csv": "input_tokens,output_tokens,count\n1,1,1000000000000\n2,2,1000000000000\n"},
            ["workload", "show", "w.csv"],
            "w.csv: 2,000,000,000,000 records; `workload show` summarises at most 50,000,000",
        ),
        (
            {
                "p.jsonl": b"\xff\xfe\n",
                "tok.model": "x",
                "s.yaml": {"workload": {"jsonl": "p.jsonl", "tokenizer": "tok.model"}},
            },
            ["run", "s.yaml", "--out", "out"],
            "workload.jsonl: ",  # was a UnicodeDecodeError with its traceback
        ),
    ],
    ids=["trace-time", "trace-tokens", "workload-table", "serving-table", "huge-histogram", "jsonl-bytes"],
)
def test_named_hostile_data_files(tmp_path: Path, files: dict[str, Any], args: Any, message: str) -> None:
    for name, content in files.items():
        if isinstance(content, dict):  # sections of the harness's scenario replaced
            data = {**copy.deepcopy(SCENARIO), **content}
            if "arrival" in content:
                data["arrival"] = {"process": "trace", **content["arrival"]}
            content = yaml.safe_dump(data)
        (tmp_path / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    if args == "serving":
        args = _serving_profile(tmp_path, BIG)
    before = snapshot(tmp_path)
    out = tmp_path / "out" if "--out" in args else None
    outcome = invoke(tmp_path, *args)
    check(outcome, tmp_path, before, out)
    assert outcome.code == 2 and message in outcome.stderr, outcome.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda text: "[" * 100_000 + "]" * 100_000, "profile.json: malformed JSON: nested too deeply"),
        (
            lambda text: json.dumps(
                {**json.loads(text), "paper_fit": {**json.loads(text)["paper_fit"], "output_range": [8]}}
            ),
            "paper_fit: malformed (a range is [low, high], got [8])",
        ),
    ],
    ids=["deep", "range-of-one"],  # a RecursionError, an IndexError
)
def test_damaged_profile_json(tmp_path: Path, change: Any, message: str) -> None:
    profile = tmp_path / "p"
    shutil.copytree(BUILTIN_DIR / "h100" / "llama2-7b-bf16-kv", profile)
    (profile / "profile.json").write_text(change((profile / "profile.json").read_text()))
    outcome = invoke(tmp_path, "profiles", "show", str(profile))
    check(outcome, tmp_path, snapshot(tmp_path), None)
    assert outcome.code == 2 and message in outcome.stderr, outcome.stderr


def test_compare_of_a_utilisation_that_is_not_a_number(finished_run: Path, tmp_path: Path) -> None:
    """Utilisation is shown as a percentage: 'gpu' x 100.0 was a TypeError with its traceback."""
    summary = json.loads((finished_run / "summary.json").read_text())
    summary["runs"][0]["systems"]["a100"]["utilisation"] = "gpu"
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "summary.json").write_text(json.dumps(summary))
    outcome = invoke(tmp_path, "compare", "run")
    assert outcome.code == 2, outcome
    assert "malformed: runs: systems.a100.utilisation: 'gpu' is not a finite number" in outcome.stderr
