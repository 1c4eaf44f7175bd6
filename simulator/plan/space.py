"""The choices an operator leaves open: how many nodes of each kind, which router, with which settings.

A plan's search space is a product of *dimensions*: each named YAML path of the base simulation scenario
(`cluster.a100.count`, `cluster.a100.max_batch`, `arrival.rate`) with its list of values, and one more
dimension for the routing policy: every policy choice expanded over its `grid` of parameter values
(`output_threshold` at thresholds 16, 32, 64 is three variants). A *candidate* is one value per dimension;
it becomes a complete `kind: simulation` scenario with exactly one policy, run once per seed.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic

from hybridsim.core.errors import HybridsimError

from ..scenario.simulation_schema import PolicySpec, PredictorSpec
from ..scenario.simulation_schema import Scenario as Simulation
from ..scenario.sweep import set_path
from .schema import PolicyChoice
from .schema import Scenario as Plan

POLICY_DIMENSION = "policy"


@dataclass(frozen=True)
class Variant:
    """One routing policy with all its parameters fixed."""

    label: str
    spec: dict[str, Any]
    """The `policies:` entry of the candidate's simulation scenario."""


@dataclass(frozen=True)
class Space:
    """Dimensions (YAML path -> values) and policy variants; candidates are indexed in row-major order."""

    base: dict[str, Any]
    """The base simulation scenario (with the plan's `set:` applied), as a JSON-ready mapping."""
    dimensions: dict[str, list[Any]]
    variants: list[Variant]

    @property
    def size(self) -> int:
        count = len(self.variants)
        for values in self.dimensions.values():
            count *= len(values)
        return count

    def choice_lists(self) -> dict[str, list[Any]]:
        """Every dimension's values, the policy (by variant label) last."""
        return {**self.dimensions, POLICY_DIMENSION: [variant.label for variant in self.variants]}

    def all_choices(self) -> list[dict[str, Any]]:
        """Every candidate, as {dimension: value}, in a fixed (row-major) order."""
        lists = self.choice_lists()
        return [dict(zip(lists, values, strict=True)) for values in itertools.product(*lists.values())]

    def index(self, choice: dict[str, Any]) -> int:
        """The candidate's position in the row-major order of `all_choices` (a search-independent rank)."""
        position = 0
        for path, values in self.choice_lists().items():
            position = position * len(values) + [repr(v) for v in values].index(repr(choice[path]))
        return position

    def scenario(self, choice: dict[str, Any], seed: int) -> Simulation:
        """The candidate `choice` as a simulation scenario with one policy, run with `seed`."""
        data = copy.deepcopy(self.base)
        for path, value in choice.items():
            if path != POLICY_DIMENSION:
                set_path(data, path, value)
        variant = next(v for v in self.variants if v.label == choice[POLICY_DIMENSION])
        data.update(policies=[variant.spec], seed=seed, write_requests=False, workers=1)
        data.pop("sweep", None)
        try:
            return Simulation.model_validate(data)
        except pydantic.ValidationError as error:
            from ..scenario.loader import format_validation_error

            raise HybridsimError(format_validation_error(error, f"candidate {key(choice)}")) from None


def key(choice: dict[str, Any]) -> str:
    """A candidate's readable, unique name: `cluster.a100.count=4, policy=output-32`."""
    return ", ".join(f"{path}={value}" for path, value in choice.items())


def _check_path(data: dict[str, Any], path: str, where: str) -> None:
    """Refuse a path that names nothing in the base scenario (a typo would otherwise add a new field)."""
    node: Any = data
    walked: list[str] = []
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            known = ", ".join(sorted(node)) if isinstance(node, dict) else "none: not a section"
            inside = ".".join(walked) or "the base scenario"
            raise HybridsimError(
                f"{where}: unknown parameter path {path!r} (no {part!r} in {inside}; known: {known})"
            )
        node = node[part]
        walked.append(part)
    if isinstance(node, dict):
        raise HybridsimError(f"{where}: {path!r} names a section, not a value")


def _variants(choices: list[PolicyChoice]) -> list[Variant]:
    variants: list[Variant] = []
    for choice in choices:
        name = choice.name or choice.policy
        keys = list(choice.grid)
        for values in itertools.product(*(choice.grid[k] for k in keys)):
            grid = dict(zip(keys, values, strict=True))
            label = name + (f"({', '.join(f'{k}={v}' for k, v in grid.items())})" if grid else "")
            spec: dict[str, Any] = {
                "name": label,
                "policy": choice.policy,
                "params": {**choice.params, **grid},
            }
            if choice.predictor is not None:
                spec["predictor"] = choice.predictor.model_dump(mode="json", exclude_none=True)
            variants.append(Variant(label, spec))
    labels = [variant.label for variant in variants]
    duplicate = next((label for label in labels if labels.count(label) > 1), None)
    if duplicate is not None:
        raise HybridsimError(f"policies: two choices give the variant {duplicate!r}; name them apart")
    return variants


def _base_policies(base: dict[str, Any]) -> list[PolicyChoice]:
    return [
        PolicyChoice.model_validate(
            PolicySpec.model_validate(spec).model_dump(mode="json", exclude_none=True)
        )
        for spec in base["policies"]
    ]


def build_space(plan: Plan, base: dict[str, Any], source: str) -> Space:
    """The plan's space over `base` (a validated simulation scenario's mapping); paths checked against it."""
    full = Simulation.model_validate(base).model_dump(mode="json")
    data = copy.deepcopy(base)
    for path, value in plan.set.items():
        _check_path(full, path, f"{source}: set.{path}")
        why = _set_by_plan(plan, path)
        if why:
            raise HybridsimError(f"{source}: set.{path}: {why}")
        set_path(data, path, value)
    dimensions: dict[str, list[Any]] = {}
    for path, values in plan.space.items():
        _check_path(full, path, f"{source}: space.{path}")
        if path.split(".")[0] in {"policies", "seed", "sweep", "workers", "write_requests"}:
            raise HybridsimError(
                f"{source}: space.{path}: set by the plan itself (policies: and seeds: choose these)"
            )
        listed = list(values)
        if len(set(map(repr, listed))) != len(listed):
            raise HybridsimError(f"{source}: space.{path}: repeated values")
        dimensions[path] = listed
    variants = _variants(plan.policies if plan.policies is not None else _base_policies(data))
    if all("predictor" in variant.spec for variant in variants):
        predictor = [path for path in dimensions if path.split(".")[0] == "predictor"]
        if predictor or Simulation.model_validate(data).predictor != PredictorSpec():
            where = f"space.{predictor[0]}" if predictor else "predictor (of the base, or set:)"
            raise HybridsimError(f"{source}: {where}: every policy choice names its own predictor; remove it")
    return Space(data, dimensions, variants)


def _set_by_plan(plan: Plan, path: str) -> str | None:
    """Why the plan itself would overwrite `set:`'s value at `path` (None: the value stands)."""
    top = path.split(".")[0]
    if top in {"sweep", "workers", "write_requests"}:
        return "set by the plan itself (search: and execution: choose these)"
    if top == "seed" and (plan.seed is not None or isinstance(plan.seeds, list)):
        return "the plan's seed: or seeds: list choose the seeds"
    return None


def read_base(plan: Plan, plan_path: Path | None) -> tuple[dict[str, Any], Path | None]:
    """The base simulation scenario as a mapping, and the folder its relative paths are read from."""
    from ..scenario.loader import read_yaml

    here = Path(plan_path).resolve().parent if plan_path else None
    if isinstance(plan.base, dict):
        data, folder, where = dict(plan.base), here, "base"
    else:
        path = plan.base if plan.base.is_absolute() or here is None else here / plan.base
        data, folder, where = read_yaml(path), path.resolve().parent, f"base ({path})"
    if data.get("kind") != "simulation":
        raise HybridsimError(f"{where}: kind: a plan's base must be a 'simulation' scenario")
    if data.get("sweep") is not None:
        raise HybridsimError(f"{where}: sweep: a plan searches its own space; give the values under space:")
    try:
        Simulation.model_validate(data)
    except pydantic.ValidationError as error:
        from ..scenario.loader import format_validation_error

        raise HybridsimError(format_validation_error(error, where)) from None
    return data, folder
