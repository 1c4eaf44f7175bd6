"""Routing policies, one small class per file, found by name through `registry.py`."""

from ..request import Request
from .base import Policy, RoutingPolicy
from .registry import BUILTIN_POLICIES, make_policy, policy_class

__all__ = ["BUILTIN_POLICIES", "Policy", "Request", "RoutingPolicy", "make_policy", "policy_class"]
