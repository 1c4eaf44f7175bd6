"""Routing policies, one small class per file, found by name through `registry.py`."""

from .base import Policy, Request, RoutingPolicy
from .registry import BUILTIN_POLICIES, make_policy, policy_class

__all__ = ["BUILTIN_POLICIES", "Policy", "Request", "RoutingPolicy", "make_policy", "policy_class"]
