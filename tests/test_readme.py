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
    simulation = [e for e in examples if isinstance(e, dict) and e.get("kind") == "simulation"]
    assert simulation, "README lost its simulation example"
    for example in simulation:
        scenario = Scenario.model_validate(example)
        check(scenario, base_dir=None)
        assert scenario.cluster["a100"].power_cap is not None
