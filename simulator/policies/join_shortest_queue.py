"""Join the shortest queue: the node with the fewest requests ahead of a newcomer.

The load balancer every operator knows. It counts requests, not work: a queue of three short prompts on an
A100 and a queue of three long answers on an M1 Pro look the same to it. Under a shared pool queue, the
count is the requests ahead per server ((waiting + 1) / nodes when all are busy, 0 with a node idle).
Ties within a pool go to the lowest-numbered node; ties between pools are broken at random in proportion to
the pools' sizes, as a uniform pick among the tied nodes would be when whole pools stand idle.
"""

from __future__ import annotations

import numpy as np

from ..cluster import Cluster, Node, Pool
from .base import BlockDraws, Request, RoutingPolicy, pools_named


class JoinShortestQueue(RoutingPolicy):
    """Send each request to the node (or shared pool) with the fewest requests ahead of it."""

    def __init__(self, systems: list[str] | None = None) -> None:
        self.systems = systems
        """Pools to choose among (default: all pools with nodes)."""
        self._pools: list[Pool] = []
        self._ties = BlockDraws(np.random.default_rng(0).random)
        """Uniform numbers in [0, 1) that break ties between pools (the run's policy stream, once bound)."""

    def bind(self, view: Cluster, rng: np.random.Generator) -> None:
        self._pools = pools_named(view, self.systems, "systems")
        self._ties = BlockDraws(rng.random)

    def route(self, request: Request, view: Cluster) -> Node:
        best_ahead, best = self._pools[0].least_loaded()
        total = self._pools[0].count
        tied = [(best, total)]
        for pool in self._pools[1:]:
            ahead, node = pool.least_loaded()
            if ahead < best_ahead:
                best_ahead, best, total = ahead, node, pool.count
                tied = [(node, total)]
            elif ahead == best_ahead:
                tied.append((node, pool.count))
                total += pool.count
        if len(tied) == 1:
            return best
        mark = self._ties.next() * total
        for node, weight in tied:
            mark -= weight
            if mark < 0:
                return node
        return tied[-1][0]
