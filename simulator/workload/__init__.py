"""Workloads: the (input tokens, output tokens) of every request a scenario sends."""

from .datasets import BUILTIN_WORKLOADS, JointHistogram, TokenLengths, load_builtin, summarise
from .spec import WorkloadSpec, build_workload

__all__ = [
    "BUILTIN_WORKLOADS",
    "JointHistogram",
    "TokenLengths",
    "WorkloadSpec",
    "build_workload",
    "load_builtin",
    "summarise",
]
