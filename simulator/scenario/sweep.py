"""A sweep: one scenario parameter, many values; every policy runs at every value.

An operator names the parameter by its YAML path (`arrival.rate`, `cluster.m1.count`, `cost.lam`,
`policies.<name>.params.threshold`); each value gives a whole scenario of its own, checked by the same
schema as the original, so that a bad value is one line naming `sweep.values.<k>`. Plans (`kind: plan`)
set their search axes through the same paths.
"""

from __future__ import annotations

import copy
from typing import Any

import pydantic

from hybridsim.core.errors import HybridsimError

from .simulation_schema import Scenario


def sweep_points(scenario: Scenario, source: str) -> list[tuple[Any, Scenario]]:
    """(value, scenario with that value) for each sweep value; [(None, scenario)] without a sweep."""
    if scenario.sweep is None:
        return [(None, scenario)]
    data = scenario.model_dump(mode="json", exclude={"sweep"}, exclude_none=True)
    points = []
    for k, value in enumerate(scenario.sweep.values):
        changed = copy.deepcopy(data)
        try:
            set_path(changed, scenario.sweep.parameter, value)
        except HybridsimError as error:
            raise HybridsimError(f"{source}: {error}") from None
        try:
            points.append((value, Scenario.model_validate(changed)))
        except pydantic.ValidationError as error:
            from .loader import format_validation_error

            raise HybridsimError(format_validation_error(error, f"{source}: sweep.values.{k}")) from None
    return points


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    parts, node = path.split("."), data
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        if isinstance(node, list):
            matches = [
                item
                for k, item in enumerate(node)
                if str(k) == part or item.get("name", item.get("policy")) == part
            ]
            if not matches:
                raise HybridsimError(f"sweep.parameter: {path}: no entry {part!r}")
            if last:
                raise HybridsimError(f"sweep.parameter: {path}: names a whole entry, not a value")
            node = matches[0]
        elif last:
            node[part] = value
        else:
            if not isinstance(node.setdefault(part, {}), (dict, list)):
                raise HybridsimError(f"sweep.parameter: {path}: {part!r} is not a section")
            node = node[part]
