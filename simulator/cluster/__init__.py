"""Nodes and pools of a hybrid datacenter (SimPy): queue disciplines, batching, power caps, per-request costs."""

from .batching import BatchModel
from .cluster import Cluster
from .costs import NO_CAP, CostEstimator, PowerCap, SystemCosts, price_requests
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
