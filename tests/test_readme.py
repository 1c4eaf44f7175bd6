"""The README's scenario example is a real scenario: it validates and passes the pre-run checks."""

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


def test_readme_test_command_is_what_ci_runs() -> None:
    """`.ci/run` runs the README's test command verbatim (the line after its 'verbatim' comment)."""
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    command = ci[next(k for k, line in enumerate(ci) if "verbatim" in line) + 1]
    assert command.startswith("pip install -c constraints.txt ")
    assert f"\n{command}\n" in README.read_text(encoding="utf-8")
