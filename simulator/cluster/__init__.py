"""Nodes and pools of a hybrid datacenter (SimPy): queue disciplines, batching,
power caps, per-request costs.
"""

from ..energy import NO_CAP, PowerCap
from .batching import BatchModel
from .cluster import Cluster
from .costs import CostEstimator, SystemCosts, price_requests
from .node import Node
from .pool import DISCIPLINES, Pool, PoolSetup

__all__ = [
    "DISCIPLINES",
    "NO_CAP",
    "BatchModel",
    "Cluster",
    "CostEstimator",
    "Node",
    "Pool",
    "PoolSetup",
    "PowerCap",
    "SystemCosts",
    "price_requests",
]
