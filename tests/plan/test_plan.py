"""`kind: plan`: the search finds what an exhaustive grid finds, tables are
reproducible, bad plans fail whole.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from hybridsim.simulator.plan.objective import confidence_interval, run_objective
from hybridsim.simulator.plan.report import pareto_front
from hybridsim.simulator.plan.schema import ObjectiveSpec
from hybridsim.simulator.scenario.loader import run_scenario
from saved_figures import saved_figures

from hybridsim.core.errors import HybridsimError

BASE: dict[str, Any] = {
    "kind": "simulation",
    "seed": 11,
    "cluster": {
        "m1": {"profile": "m1-pro/llama2-7b", "count": 16},
        "a100": {"profile": "swing-a100/llama2-7b", "count": 2, "queue": "shared"},
    },
    "cost_model": {"method": "interpolated", "out_of_range": "clamp"},
    "workload": {"dataset": "alpaca"},
    "arrival": {"process": "poisson", "rate": 1.0, "requests": 150, "warmup_s": 20},
    "predictor": {"kind": "oracle"},
    "policies": [{"name": "all-a100", "policy": "all_on", "params": {"system": "a100"}}],
}

PLAN: dict[str, Any] = {
    "kind": "plan",
    "name": "tiny",
    "base": BASE,
    "space": {"cluster.m1.count": [8, 16], "cluster.a100.count": {"from": 1, "to": 3}},
    "policies": [
        {"name": "all-a100", "policy": "all_on", "params": {"system": "a100"}},
        {
            "name": "output",
            "policy": "output_threshold",
            "params": {"below": "m1", "above": "a100"},
            "grid": {"threshold": [32, 128]},
        },
    ],
    "seeds": 2,
    "constraints": [{"metric": "latency_s.p99", "max": 60}],
    "search": {"method": "grid"},
    "execution": {"workers": 1},
}


def write_plan(tmp_path: Path, **changes: Any) -> Path:
    plan = copy.deepcopy(PLAN)
    plan.update(changes)
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(plan), encoding="utf-8")
    return path


def hybridsim(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from hybridsim.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_grid_plan_writes_every_candidate_and_the_best_feasible_one(tmp_path: Path) -> None:
    summary = run_scenario(write_plan(tmp_path), tmp_path / "out")
    table = pd.read_csv(tmp_path / "out" / "candidates.csv")
    assert len(table) == 2 * 3 * 3 == summary["search"]["evaluated"]
    feasible = table[table["feasible"]]
    assert not feasible.empty
    best = feasible.sort_values(["objective", "candidate"]).iloc[0]
    assert summary["best"]["candidate"] == int(best["candidate"])
    assert summary["best"]["pareto_value_max"] <= 60
    low, high = summary["best"]["objective_ci_low"], summary["best"]["objective_ci_high"]
    assert low <= summary["best"]["objective"] <= high
    runs = pd.read_csv(tmp_path / "out" / "runs.csv")
    assert len(runs) == 2 * len(table)
    mean = runs[runs["candidate"] == best["candidate"]]["energy.total_kwh"].mean()
    assert mean == pytest.approx(best["objective"], rel=1e-9)
    assert {"pareto.png", "heatmap.png"} <= {p.name for p in (tmp_path / "out").iterdir()}
    front = table[table["pareto"]]
    for _, row in front.iterrows():  # nothing on the front is beaten in both coordinates
        better = table[
            (table["objective"] < row["objective"]) & (table["pareto_value"] < row["pareto_value"])
        ]
        assert better.empty


def test_optuna_on_a_small_space_finds_the_grid_answer(tmp_path: Path) -> None:
    grid = run_scenario(write_plan(tmp_path), tmp_path / "grid")
    search = {"method": "optuna", "trials": 40, "batch": 4, "seed": 3}
    tpe = run_scenario(write_plan(tmp_path, search=search), tmp_path / "tpe")
    assert tpe["search"]["method"] == "optuna"
    assert tpe["search"]["evaluated"] <= grid["search"]["evaluated"]
    assert tpe["best"]["choice"] == grid["best"]["choice"]
    assert tpe["best"]["objective"] == grid["best"]["objective"]


def test_tables_do_not_depend_on_the_worker_count(tmp_path: Path) -> None:
    search = {"method": "optuna", "trials": 8, "batch": 4, "seed": 1}
    one = run_scenario(write_plan(tmp_path, search=search, execution={"workers": 1}), tmp_path / "one")
    two = run_scenario(write_plan(tmp_path, search=search, execution={"workers": 2}), tmp_path / "two")
    assert one == two
    for name in ("candidates.csv", "runs.csv", "summary.json", "candidates.parquet"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()


def test_cost_and_carbon_objectives(tmp_path: Path) -> None:
    run = {
        "energy": {"total_kwh": 2.0},
        "horizon_s": 7200.0,
        "systems": {"m1": {"nodes": 10}, "a100": {"nodes": 3}},
        "carbon": {"total_kg": 0.9},
    }
    cost = ObjectiveSpec(kind="cost", price_per_kwh=0.25, node_hour={"a100": 1.5, "m1": 0.1})
    assert run_objective(run, cost) == pytest.approx(2.0 * 0.25 + (3 * 1.5 + 10 * 0.1) * 2)
    carbon = ObjectiveSpec.model_validate({"kind": "carbon", "carbon": {"g_per_kwh": 450}})
    assert run_objective(run, carbon) == 0.9
    plan = write_plan(tmp_path, objective={"kind": "carbon", "carbon": {"g_per_kwh": 500}}, seeds=1)
    summary = run_scenario(plan, tmp_path / "out")
    runs = pd.read_csv(tmp_path / "out" / "runs.csv")
    assert runs["carbon.total_kg"].to_numpy() == pytest.approx(runs["energy.total_kwh"].to_numpy() * 0.5)
    assert summary["objective"]["unit"] == "kg CO2"


def test_pareto_front_and_interval_helpers() -> None:
    points = [(3.0, 1.0), (2.0, 2.0), (2.5, 3.0), (1.0, 5.0), (1.0, 6.0), (float("inf"), 0.5)]
    assert pareto_front(points) == [0, 1, 3]
    import numpy as np

    assert confidence_interval(np.array([1.0])) == (None, None)
    low, high = confidence_interval(np.array([1.0, 2.0, 3.0]))
    assert low == pytest.approx(2.0 - 4.302652729911275 / np.sqrt(3)) and high > 2.0


def test_the_headline_counts_ties_in_words_and_keeps_trailing_zeros() -> None:
    from hybridsim.simulator.plan.kind import _headline

    best = {
        "choice": {"cluster.a100.count": 6},
        "objective": 1.149,
        "objective_ci_low": 1.133,
        "objective_ci_high": 1.168,
        "pareto_value": 13.8,
        "offline_bound": {"above_pct_mean": 0.01},
    }
    summary = {
        "best": best,
        "objective": {"unit": "kWh"},
        "seeds": [1, 2, 3],
        "scenario": "plan",
        "feasible": 4,
        "search": {"evaluated": 8, "method": "grid", "space_size": 8},
        "tied_with_best": [5],
    }
    text = _headline(summary, "latency_s.p99")
    assert "1.149 kWh (95% CI 1.133-1.168 over 3 seeds)" in text and text.endswith("; 1 other ties with it")
    best["objective_ci_high"] = 1.17
    assert "(95% CI 1.133-1.170 over" in _headline(summary, "latency_s.p99")
    summary["tied_with_best"] = [5, 7]
    assert _headline(summary, "latency_s.p99").endswith("; 2 others tie with it")
    summary["tied_with_best"] = []
    assert "tie" not in _headline(summary, "latency_s.p99")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"space": {"cluster.m1.count": []}}, r"plan.yaml: space: cluster.m1.count: empty list of values$"),
        ({"space": {"cluster.m1.count": {"from": 5, "to": 2}}}, r"space: cluster.m1.count: .*empty range"),
        ({"policies": []}, r"policies"),
        (
            {"space": {"cluster.m9.count": [1, 2]}},
            r"space.cluster.m9.count: unknown parameter path .*no 'm9'",
        ),
        ({"set": {"arrival.rat": 2}}, r"set.arrival.rat: unknown parameter path"),
        ({"constraints": [{"metric": "latency_s.p999", "max": 1}]}, r"constraints.0.metric: no figure"),
        (
            {"constraints": [{"metric": "latency_s.p99", "max": 0.001}]},
            r"no feasible candidate among 18; the nearest, .* fails latency_s.p99 <= 0.001 \(worst seed",
        ),
    ],
)
def test_bad_plans_fail_on_one_line_with_exit_2(
    tmp_path: Path, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(HybridsimError, match=message):
        run_scenario(write_plan(tmp_path, **changes), tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["plan.yaml"]


def test_cli_reports_an_infeasible_plan_and_a_silent_ray_address_on_one_line(tmp_path: Path) -> None:
    plan = write_plan(tmp_path, constraints=[{"metric": "latency_s.p99", "max": 0.001}], seeds=1)
    done = hybridsim("run", str(plan), "--out", str(tmp_path / "out"))
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "fails latency_s.p99 <= 0.001" in done.stderr
    pytest.importorskip("ray")
    done = hybridsim("run", str(write_plan(tmp_path)), "--backend", "ray", "--address", "127.0.0.1:9")
    assert done.returncode == 2
    assert (
        done.stderr.strip().splitlines() == [done.stderr.strip().splitlines()[0]]
        and "--address 127.0.0.1:9: no Ray cluster answers there" in done.stderr
    )
    done = hybridsim("run", "scenarios/default.yaml", "--backend", "ray", "--out", str(tmp_path / "x"))
    assert done.returncode == 2 and "only a 'plan' scenario runs on a backend" in done.stderr


def test_readme_plan_example_is_a_valid_plan_over_the_shipped_scenarios() -> None:
    import re

    from hybridsim.simulator.plan import kind as plan_kind

    root = Path(__file__).resolve().parents[2]
    blocks = re.findall(r"```yaml\n(.*?)```", (root / "README.md").read_text(encoding="utf-8"), flags=re.S)
    plans = [
        block for block in map(yaml.safe_load, blocks) if isinstance(block, dict) and block["kind"] == "plan"
    ]
    assert plans, "README lost its plan example"
    for example in plans:
        scenario = plan_kind.Scenario.model_validate(example)
        space, seeds, _ = plan_kind._prepare(scenario, root / "scenarios" / "example.yaml", "README")
        assert space.size == 13 * 6 * 8 and len(seeds) == 3


def test_the_heatmap_labels_its_colours_and_keeps_its_numbers_legible(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hybridsim.simulator.plan import report

    saved = saved_figures(monkeypatch, report)
    candidates = pd.DataFrame(
        {
            "cluster.m1.count": [0, 8, 0, 8],
            "cluster.a100.count": [5, 5, 6, 6],
            "objective": [1.0, 1.35, 1.25, 1.1],
            "feasible": [True, True, True, False],
        }
    )
    assert report.heatmap(candidates, ["cluster.m1.count", "cluster.a100.count"], "energy", tmp_path)
    heat, bar = saved[0].axes
    assert bar.get_ylabel() == "best feasible energy (kWh)"
    assert heat.get_xlabel() == "cluster.m1.count (nodes)"
    colours = {text.get_text(): text.get_color() for text in heat.texts}
    assert colours == {"1.00": "white", "1.35": "black", "1.25": "black"}  # dark on viridis' yellow end
