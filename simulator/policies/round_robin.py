"""Round robin: every node in turn, whatever it is and whatever the request asks.

The oldest load balancer there is. It spreads requests evenly by count over all nodes of all pools, which
in a hybrid datacenter means a slow M1 Pro gets as many requests as a fast A100: the workload- and
hardware-unaware baseline of the paper's routing scripts.
"""

from __future__ import annotations

from ..cluster import Cluster, Node
from .base import Request, RoutingPolicy


class RoundRobin(RoutingPolicy):
    """Send the k-th request to node k mod N (N = all nodes, in pool order)."""

    def __init__(self) -> None:
        self._next = 0

    def route(self, request: Request, view: Cluster) -> Node:
        nodes = view.nodes
        node = nodes[self._next]
        self._next = (self._next + 1) % len(nodes)
        return node
