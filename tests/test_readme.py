"""The README's scenario examples are real scenarios: they validate and pass the pre-run checks."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from hybridsim.simulator.scenario.simulation import Scenario, check

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_simulation_example_is_valid() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    examples = [yaml.safe_load(block) for block in blocks]
    simulation = [
        e
        for e in examples
        if isinstance(e, dict)
        and e.get("kind") == "simulation"
        and e.get("name") != "tiny-hybrid"  # needs a calibration first: tests/test_end_to_end.py runs it
    ]
    assert simulation, "README lost its simulation example"
    for example in simulation:
        scenario = Scenario.model_validate(example)
        check(scenario, base_dir=None)
        assert scenario.cluster["a100"].power_cap is not None


def test_readme_plan_example_is_valid() -> None:
    """The plan example with its `base: default.yaml` from scenarios/; every dimension checked."""
    from hybridsim.simulator.plan import kind as plan
    from hybridsim.simulator.plan.schema import Scenario as Plan

    blocks = re.findall(r"```yaml\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    (example,) = [yaml.safe_load(block) for block in blocks if block.startswith("kind: plan")]
    scenario = Plan.model_validate(example)
    space, seeds, _ = plan._prepare(scenario, README.parent / "scenarios" / "plan.yaml", "README.md")
    assert space.size == 13 * 6 * (1 + 4 + 3) and len(seeds) == 3
    assert scenario.execution.backend == "local" and scenario.execution.workers == 2


def test_readme_test_command_is_what_ci_runs() -> None:
    """`.ci/run` runs the README's test command verbatim (the line after its 'verbatim' comment)."""
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    command = ci[next(k for k, line in enumerate(ci) if "verbatim" in line) + 1]
    assert command.startswith("pip install -c constraints.txt ")
    assert f"\n{command}\n" in README.read_text(encoding="utf-8")
