"""Policies by name: the built-ins, or a user's own class given as `module:Class`.

A scenario names a policy and its parameters:

    policies:
      - name: input-32               # label in the results (default: the policy's name)
        policy: input_threshold      # a built-in name, or `my_package.my_module:MyRouter`
        params: {threshold: 32, below: m1, above: a100}

`params` are the class's constructor arguments, checked against its signature before anything runs. A
user's class needs only `route(request, view) -> node` (see `base.py`); `bind` and `needs_estimates`
are optional.
"""

from __future__ import annotations

import importlib
import inspect
import typing
from typing import Any

import pydantic

from hybridsim.core.errors import HybridsimError

from .base import Policy

BUILTIN_POLICIES: dict[str, str] = {
    "round_robin": "hybridsim.simulator.policies.round_robin:RoundRobin",
    "random": "hybridsim.simulator.policies.random_choice:RandomChoice",
    "join_shortest_queue": "hybridsim.simulator.policies.join_shortest_queue:JoinShortestQueue",
    "all_on": "hybridsim.simulator.policies.all_on:AllOn",
    "input_threshold": "hybridsim.simulator.policies.input_threshold:InputThreshold",
    "output_threshold": "hybridsim.simulator.policies.output_threshold:OutputThreshold",
    "product_threshold": "hybridsim.simulator.policies.product_threshold:ProductThreshold",
    "cost_greedy": "hybridsim.simulator.policies.cost_greedy:CostGreedy",
    "energy_under_slo": "hybridsim.simulator.policies.energy_under_slo:EnergyUnderSlo",
    "token_jsq": "hybridsim.simulator.policies.token_jsq:TokenJsq",
    "marginal_energy": "hybridsim.simulator.policies.marginal_energy:MarginalEnergy",
}


def is_policy_reference(name: str) -> bool:
    """A built-in name, or something shaped like `module:Class`."""
    if name in BUILTIN_POLICIES:
        return True
    module, _, attribute = name.partition(":")
    return bool(module) and attribute.isidentifier()


def policy_class(name: str) -> type:
    """The class behind a built-in name or a `module:Class` reference."""
    target = BUILTIN_POLICIES.get(name, name)
    module_name, _, class_name = target.partition(":")
    if not class_name:
        known = ", ".join(BUILTIN_POLICIES)
        raise HybridsimError(f"policy: unknown policy {name!r} (built-ins: {known}; or module:Class)")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise HybridsimError(f"policy: cannot import {module_name!r} for {name!r}: {error}") from None
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type) or not callable(getattr(cls, "route", None)):
        raise HybridsimError(f"policy: {name!r} is not a class with a route(request, view) method")
    return cls


def make_policy(name: str, params: dict[str, Any]) -> Policy:
    """An instance of policy `name` built from `params` (checked against the constructor's signature)."""
    cls = policy_class(name)
    signature = inspect.signature(cls)
    try:
        signature.bind(**params)
    except TypeError as error:
        accepted = ", ".join(signature.parameters) or "none"
        raise HybridsimError(f"params: {error} (accepted by {name}: {accepted})") from None
    if name not in BUILTIN_POLICIES:  # a user's class: its exceptions are the user's, in one line
        from .user_policy import UserPolicy, construct

        return UserPolicy(construct(cls, name, params), name)
    params = _typed(cls, params)
    try:
        return cls(**params)
    except (TypeError, ValueError) as error:  # a parameter of the wrong type ('abc' for a number, ...)
        given = ", ".join(f"{key}={value!r}" for key, value in params.items())
        raise HybridsimError(f"params: {name} rejects {given}: {error}") from None


def _typed(cls: type, params: dict[str, Any]) -> dict[str, Any]:
    """A built-in's `params` as its constructor's annotations read them: `idle_aware: "false"` is False
    (it was a truthy string, so True); `idle_aware: "abc"`, `systems: [1, 2]` are refused, naming the key."""
    hints = typing.get_type_hints(cls.__init__)  # type: ignore[misc]
    typed = dict(params)
    for key, value in params.items():
        if key not in hints:
            continue
        try:
            typed[key] = pydantic.TypeAdapter(hints[key]).validate_python(value)
        except pydantic.ValidationError as error:
            first = error.errors()[0]
            where = "".join(f".{part}" for part in first["loc"])
            raise HybridsimError(f"params.{key}{where}: {first['msg']} (got {value!r})") from None
    return typed
