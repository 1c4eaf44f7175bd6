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
from typing import Any

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
    try:
        return cls(**params)
    except (TypeError, ValueError) as error:  # a parameter of the wrong type ('abc' for a number, ...)
        given = ", ".join(f"{key}={value!r}" for key, value in params.items())
        raise HybridsimError(f"params: {name} rejects {given}: {error}") from None
