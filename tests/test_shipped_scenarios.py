"""Every scenario the project ships is valid and passes its pre-run checks (the README runs them)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hybridsim.simulator.plan import kind as plan
from hybridsim.simulator.scenario import simulation
from hybridsim.simulator.scenario.loader import load_scenario

SCENARIOS = sorted((Path(__file__).resolve().parents[1] / "scenarios").glob("*.yaml"))


def test_there_are_scenarios_of_both_kinds() -> None:
    kinds = {load_scenario(path)[1].kind for path in SCENARIOS}
    assert kinds == {"simulation", "threshold-sweep", "plan"}


@pytest.mark.parametrize("path", SCENARIOS, ids=[path.stem for path in SCENARIOS])
def test_shipped_scenario_is_valid(path: Path) -> None:
    module, scenario = load_scenario(path)
    if module is simulation:
        for _, point in simulation.sweep_points(scenario, str(path)):
            simulation.check(point, path.parent)
    if module is plan:
        space, seeds, _ = plan._prepare(scenario, path, str(path))  # every dimension's values checked
        assert space.size > 1 and seeds


def test_the_main_job_runs_and_its_headline_holds(tmp_path: Path) -> None:
    """`hybridsim run scenarios/default.yaml`, the README's first command, end to end."""
    from hybridsim.simulator.scenario.loader import run_scenario

    default = next(path for path in SCENARIOS if path.stem == "default")
    summary = run_scenario(default, tmp_path / "default")
    runs = {run["policy"]: run for run in summary["runs"]}
    assert len(runs) == 11 and all(run["requests"] == 40_000 for run in runs.values())
    for run in runs.values():
        energy = run["energy"]
        assert energy["total_j"] == pytest.approx(energy["active_j"] + energy["idle_j"], rel=1e-12)
    # what the README says this scenario shows: the paper's input rule saturates the M1 pool under load
    assert "m1" in runs["input-32"]["saturated"] and not runs["all-a100"]["saturated"]
    assert runs["input-32"]["energy"]["total_j"] > 1.4 * runs["all-a100"]["energy"]["total_j"]
    assert runs["input-32"]["latency_s"]["p99"] > 100 * runs["all-a100"]["latency_s"]["p99"]
    assert (tmp_path / "default" / "energy_vs_p99.png").is_file()
