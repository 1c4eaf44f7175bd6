"""`hybridsim run` on a hostile scenario: hostile values at its YAML paths, hostile bytes as the file, and
the named cases (each with the one line it must print). The promise and the harness: hostile_harness.py.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hostile_harness import FUZZ, HOSTILE_VALUES, SCENARIO, check, invoke, snapshot, workspace
from hypothesis import given, settings
from hypothesis import strategies as st

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
    (
        "recursive alias",  # was a RecursionError while looking for NaN in a structure that never ends
        {"s.yaml": "kind: simulation\nloop: &a [*a]\n"},
        "s.yaml:2:7: malformed YAML: an alias refers to a collection that contains it",
    ),
    (  # a path too long for the file system was an OSError with its traceback
        "profile name too long for a path",
        {"s.yaml": _scenario_with(cluster__m1__profile="p" * 300)},
        f"/{'p' * 300}': File name too long",
    ),
    (
        "trace name too long for a path",
        {"s.yaml": _scenario_with(arrival={"process": "trace", "trace": "t" * 300})},
        f"{'t' * 300}: File name too long",
    ),
    (
        "workload table name too long for a path",
        {"s.yaml": _scenario_with(workload={"csv": "w" * 300})},
        f"{'w' * 300}: File name too long",
    ),
    (
        "carbon series name too long for a path",
        {"s.yaml": _scenario_with(carbon={"intensity_csv": "c" * 300})},
        f"{'c' * 300}: File name too long",
    ),
    (  # was a list of 10**9 seeds built before the first run: MemoryError, or the machine swapping
        "plan seeds beyond memory",
        {"s.yaml": yaml.safe_dump({"kind": "plan", "base": SCENARIO, "seeds": 10**9})},
        "s.yaml: seeds: 1,000,000,000 runs of every candidate; at most 10,000",
    ),
    (
        "plan base name too long for a path",
        {"s.yaml": yaml.safe_dump({"kind": "plan", "base": "b" * 300, "space": {"cluster.m1.count": [1]}})},
        f"{'b' * 300}: File name too long",
    ),
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


def test_yaml_merge_keys_are_read_and_duplicates_beside_them_still_refused(tmp_path: Path) -> None:
    """`<<: *pool` (YAML's merge key) was refused as "could not determine a constructor for the tag
    'tag:yaml.org,2002:merge'": the duplicate-key check built the merge key as a value. A key given beside
    a merge overrides the merged one, as YAML says; the same key given twice is still refused."""
    text = _scenario_with(cluster={}).replace(
        "cluster: {}\n",
        "cluster:\n  m1: &pool {profile: m1-pro/llama2-7b, count: 3, idle_power_w: 0.5}\n"
        "  a100:\n    <<: *pool\n    profile: swing-a100/llama2-7b\n    count: 1\n",
    )
    (tmp_path / "s.yaml").write_text(text)
    outcome = invoke(tmp_path, "run", "s.yaml", "--out", "out")
    assert outcome.code == 0, outcome.stderr
    resolved = yaml.safe_load((tmp_path / "out" / "scenario.resolved.yaml").read_text())
    a100 = resolved["cluster"]["a100"]
    assert (a100["profile"], a100["count"], a100["idle_power_w"]) == ("swing-a100/llama2-7b", 1, 0.5)
    (tmp_path / "s.yaml").write_text(text.replace("    count: 1\n", "    count: 1\n    count: 4\n"))
    outcome = invoke(tmp_path, "run", "s.yaml", "--out", "out2")
    assert outcome.code == 2 and "malformed YAML: duplicate key 'count'" in outcome.stderr, outcome.stderr


@pytest.mark.parametrize(
    ("names", "sweep"),
    [
        (["x" * 300, "in-32"], None),  # beyond the file system's 255 bytes: was a traceback
        (["a b", "a_b"], None),  # one requests file for both: the second run overwrote the first
        (["A", "a"], None),  # the same file on a case-insensitive file system
        (["all-a100", "in-32"], {"parameter": "cost.reference", "values": ["a100", "a100"]}),
        (["all-a100", "in-32"], {"parameter": "policies.in-32.name", "values": ["p q", "p/q", "y" * 400]}),
    ],
)
def test_every_run_writes_its_own_requests_file(
    tmp_path: Path, names: list[str], sweep: dict[str, Any] | None
) -> None:
    data = copy.deepcopy(SCENARIO)
    data["write_requests"] = True
    for policy, name in zip(data["policies"], names, strict=True):
        policy["name"] = name
    if sweep:
        data["sweep"] = sweep
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(data))
    outcome = invoke(tmp_path, "run", "s.yaml", "--out", "out")
    assert outcome.code == 0, outcome.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    files = [run["requests_file"] for run in summary["runs"]]
    assert len({file.lower() for file in files}) == len(files) == len(summary["runs"]), files
    assert all((tmp_path / "out" / file).is_file() for file in files)
