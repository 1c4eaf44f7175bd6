"""`hybridsim run` on threshold-sweep scenarios, end to end: results whole and
reproducible, bad input refused.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from conftest import CliRun
from hybridsim.simulator.scenario.loader import run_scenario

from hybridsim.core.errors import HybridsimError

SYSTEMS = """\
systems:
  M1-Pro:
    profiles: [m1-pro/llama2-7b, m1-pro/mistral-7b]
  Swing AMD+A100:
    profiles: [swing-a100/llama2-7b]
"""


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def test_paper_input_scenario_end_to_end(hybridsim: CliRun, repo_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "result"
    done = hybridsim("run", str(repo_root / "scenarios" / "paper-input-threshold.yaml"), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "best T = 32" in done.stdout
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [
            ".hybridsim-run.json",  # the marker that makes this folder hybridsim's to replace
            "summary.json",
            "scenario.resolved.yaml",
            "sweep.csv",
            "per-bin.csv",
            "energy-vs-threshold.png",
            "energy-vs-threshold.pdf",
            "runtime-vs-threshold.png",
            "runtime-vs-threshold.pdf",
        ]
    )
    summary = json.loads((out / "summary.json").read_text())
    for key in (
        "kind",
        "scenario",
        "seed",
        "method",
        "rule",
        "best_threshold",
        "best_energy_j",
        "baselines",
        "savings_vs_baseline_pct",
        "thresholds",
        "out_of_range_requests",
        "headline",
        "cost_u_normalisation",
    ):
        assert key in summary, key
    assert summary["kind"] == "threshold-sweep" and summary["method"] == "paper"
    assert [row["threshold"] for row in summary["thresholds"]] == [8, 16, 32, 64, 128, 256, 512, 1024, 2048]
    assert set(summary["baselines"]) == {"M1-Pro", "Swing AMD+A100"}
    assert summary["thresholds"][2]["energy_j"] == summary["best_energy_j"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result"]  # no staging directory left behind


def per_request_scenario(
    tmp_path: Path, extra: str = "", rows: str = "20,30\n40,8\n12,100\n300,64\n", requests: int | None = 500
) -> Path:
    (tmp_path / "lengths.csv").write_text("input_tokens,output_tokens\n" + rows)
    return write(
        tmp_path / "pr.yaml",
        f"""\
kind: threshold-sweep
name: small
{"seed: 3" if requests else ""}
{SYSTEMS}workload:
  csv: lengths.csv
{f"  requests: {requests}" if requests else ""}
method: per-request
rule: product
thresholds: {{start: 1, stop: 300}}
lam: 0.25
{extra}""",
    )


def test_same_scenario_and_seed_give_identical_files(tmp_path: Path) -> None:
    scenario = per_request_scenario(tmp_path)
    first = run_scenario(scenario, tmp_path / "a")
    run_scenario(scenario, tmp_path / "b")
    for path in sorted((tmp_path / "a").iterdir()):
        assert path.read_bytes() == (tmp_path / "b" / path.name).read_bytes(), path.name
    assert first["workload"]["requests"] == 500 and first["rule"] == "product"
    assert first["out_of_range_requests"] == {
        "m1-pro/llama2-7b": 0,
        "m1-pro/mistral-7b": 0,
        "swing-a100/llama2-7b": 0,
    }
    best = min(first["thresholds"], key=lambda row: row["energy_j"])
    assert first["best_threshold"] == best["threshold"]
    u_best = min(first["thresholds"], key=lambda row: row["cost_u"])
    assert first["best_threshold_u"] == u_best["threshold"]


def test_out_of_range_requests_are_counted_when_clamped(tmp_path: Path) -> None:
    scenario = per_request_scenario(
        tmp_path, "out_of_range: clamp\n", rows="20,30\n4,8\n12,900\n", requests=None
    )
    summary = run_scenario(scenario, tmp_path / "out")
    # input 4 is below every profile's range; output 900 is beyond M1's 512 but within Swing's 4096
    assert summary["out_of_range_requests"]["m1-pro/llama2-7b"] == 2
    assert summary["out_of_range_requests"]["swing-a100/llama2-7b"] == 1
    with pytest.raises(HybridsimError, match="measured range"):
        run_scenario(
            per_request_scenario(tmp_path, "out_of_range: error\n", rows="20,30\n4,8\n"), tmp_path / "refused"
        )
    assert not (tmp_path / "refused").exists()


BAD = {
    "unknown field": (
        "kind: threshold-sweep\nseed: 1\nthreshold: [8]\n" + SYSTEMS + "workload: {dataset: alpaca}\n",
        "threshold: unknown field",
    ),
    "unknown profile": (
        "kind: threshold-sweep\n"
        + SYSTEMS.replace("swing-a100/llama2-7b", "swing-a100/gpt-9")
        + "workload: {dataset: alpaca}\n",
        "systems.Swing AMD+A100.profiles",
    ),
    "empty workload": (
        "kind: threshold-sweep\n" + SYSTEMS + "workload: {dataset: alpaca, max_input_tokens: 3}\n",
        "no requests",
    ),
    "malformed yaml": ("kind: threshold-sweep\nsystems: [unclosed\n", "malformed YAML"),
    "three systems": (
        "kind: threshold-sweep\n"
        + SYSTEMS
        + "  Third: {profiles: [m1-pro/llama2-7b]}\n"
        + "workload: {dataset: alpaca}\n",
        "exactly two systems",
    ),
    "paper product": (
        "kind: threshold-sweep\nmethod: paper\nrule: product\n" + SYSTEMS + "workload: {dataset: alpaca}\n",
        "rule: ",
    ),
    "out of range": (
        "kind: threshold-sweep\nmethod: per-request\nout_of_range: error\n"
        + SYSTEMS
        + "workload: {dataset: alpaca}\n",
        "of 51,941 requests fall outside profile m1-pro/llama2-7b",
    ),
    "out of range, per axis": (
        "kind: threshold-sweep\nmethod: per-request\nout_of_range: error\n"
        + SYSTEMS
        + "workload: {dataset: alpaca}\n",
        "630 with input tokens 6-8 below 9;",
    ),
    "stop below start": (
        "kind: threshold-sweep\nthresholds: {start: 10, stop: 2}\n"
        + SYSTEMS
        + "workload: {dataset: alpaca}\n",
        "bad.yaml: thresholds: stop (2) is below start (10)",
    ),
    "no power of two": (
        "kind: threshold-sweep\nthresholds: {start: 5, stop: 7, scale: powers-of-two}\n"
        + SYSTEMS
        + "workload: {dataset: alpaca}\n",
        "bad.yaml: thresholds: no power of two within [5, 7]",
    ),
    "too many thresholds": (
        "kind: threshold-sweep\nthresholds: {start: 0, stop: 1000000000000}\n"
        + SYSTEMS
        + "workload: {dataset: alpaca}\n",
        "at most 100,000",
    ),
    "negative seed": (
        "kind: threshold-sweep\nseed: -1\n" + SYSTEMS + "workload: {dataset: alpaca}\n",
        "seed: Input should be greater than or equal to 0",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_line_exit_2_and_no_output(hybridsim: CliRun, tmp_path: Path, case: str) -> None:
    text, message = BAD[case]
    scenario = tmp_path / "bad.yaml"
    scenario.write_text(text)
    out = tmp_path / "out"
    done = hybridsim("run", str(scenario), "--out", str(out))
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    assert message in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]
