"""Hostile `params:` of every built-in policy: one constructor argument of an otherwise valid policy given
a hostile value (a list or mapping where a pool's name belongs, a number where a list of pools belongs,
...). The promise and the harness: hostile_harness.py.
"""

from __future__ import annotations

import copy
import inspect
from pathlib import Path
from typing import Any

import pytest
import yaml
from hostile_harness import FUZZ, HOSTILE_VALUES, SCENARIO, check, invoke, snapshot, workspace
from hybridsim.simulator.policies.registry import BUILTIN_POLICIES, policy_class
from hypothesis import given, settings
from hypothesis import strategies as st

VALID_PARAMS: dict[str, dict[str, Any]] = {
    "all_on": {"system": "a100"},
    "input_threshold": {"threshold": 32, "below": "m1", "above": "a100"},
    "output_threshold": {"threshold": 32, "below": "m1", "above": "a100"},
    "product_threshold": {"threshold": 32, "below": "m1", "above": "a100"},
    "energy_under_slo": {"slo_s": 60},
    "marginal_energy": {"below": "m1", "above": "a100"},
}
"""What each built-in needs to run on `SCENARIO`'s pools (the others need nothing)."""
PARAMETERS = [
    (name, parameter)
    for name in BUILTIN_POLICIES
    for parameter in inspect.signature(policy_class(name)).parameters
]
POOL_SHAPED = [["a100"], ["a100", "m1"], ["nope"], [None], [[]], {"a100": 1}, "m1", "a100", 5]


def _policy(name: str, parameter: str, value: Any) -> str:
    data = copy.deepcopy(SCENARIO)
    data["policies"] = [{"policy": name, "params": {**VALID_PARAMS.get(name, {}), parameter: value}}]
    return yaml.safe_dump(data)


@settings(FUZZ, max_examples=60)
@given(st.sampled_from(PARAMETERS), st.sampled_from([*HOSTILE_VALUES, *POOL_SHAPED]))
def test_policy_with_a_hostile_parameter(choice: tuple[str, str], value: Any) -> None:
    with workspace() as folder:
        (folder / "s.yaml").write_text(_policy(*choice, value))
        before = snapshot(folder)
        check(invoke(folder, "run", "s.yaml", "--out", "out"), folder, before, folder / "out")


@pytest.mark.parametrize(
    ("name", "parameter", "value", "message"),
    [  # each was a TypeError with its traceback (a list is no key of the cluster's pools), or accepted
        (
            "input_threshold",
            "below",
            ["m1", "a100"],
            "params.below: Input should be a valid string",
        ),
        ("all_on", "system", {"a100": 1}, "params.system: Input should be a valid string"),
        ("cost_greedy", "reference", ["a100"], "params.reference: Input should be a valid string"),
        ("join_shortest_queue", "systems", 5, "params.systems: Input should be a valid list"),
        ("token_jsq", "systems", ["a100", 1], "params.systems.1: Input should be a valid string"),
        (
            "cost_greedy",
            "idle_aware",
            "maybe",
            "params.idle_aware: Input should be a valid boolean",
        ),
        ("energy_under_slo", "slo_s", "soon", "params.slo_s: Input should be a valid number"),
    ],
)
def test_parameters_of_the_wrong_type(
    tmp_path: Path, name: str, parameter: str, value: Any, message: str
) -> None:
    (tmp_path / "s.yaml").write_text(_policy(name, parameter, value))
    before = snapshot(tmp_path)
    outcome = invoke(tmp_path, "run", "s.yaml", "--out", "out")
    check(outcome, tmp_path, before, tmp_path / "out")
    assert outcome.code == 2 and f"s.yaml: policies.0.{message}" in outcome.stderr, outcome.stderr


def test_a_boolean_given_as_text_means_what_it_says(tmp_path: Path) -> None:
    """`idle_aware: "false"` reached the policy as a non-empty string, which Python reads as true."""
    from hybridsim.simulator.policies.registry import make_policy

    assert make_policy("cost_greedy", {"idle_aware": "false"}).idle_aware is False  # type: ignore[attr-defined]
    assert make_policy("cost_greedy", {"idle_aware": "true"}).idle_aware is True  # type: ignore[attr-defined]
