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
from .base import Request, RoutingPolicy, pools_named

_BLOCK = 65536


class JoinShortestQueue(RoutingPolicy):
    """Send each request to the node (or shared pool) with the fewest requests ahead of it."""

    def __init__(self, systems: list[str] | None = None) -> None:
        self.systems = systems
        """Pools to choose among (default: all pools with nodes)."""
        self._pools: list[Pool] = []
        self._rng = np.random.default_rng(0)
        self._draws: list[float] = []
        self._next = 0

    def bind(self, view: Cluster, rng: np.random.Generator) -> None:
        self._pools = pools_named(view, self.systems, "systems")
        self._rng, self._draws, self._next = rng, [], 0

    def _uniform(self) -> float:
        if self._next == len(self._draws):
            self._draws, self._next = self._rng.random(_BLOCK).tolist(), 0
        self._next += 1
        return self._draws[self._next - 1]

    def route(self, request: Request, view: Cluster) -> Node:
        best_ahead, best = self._pools[0].least_loaded()
        tied = [(best, self._pools[0].count)]
        for pool in self._pools[1:]:
            ahead, node = pool.least_loaded()
            if ahead < best_ahead:
                best_ahead, best, tied = ahead, node, [(node, pool.count)]
            elif ahead == best_ahead:
                tied.append((node, pool.count))
        if len(tied) == 1:
            return best
        mark = self._uniform() * sum(weight for _, weight in tied)
        for node, weight in tied:
            mark -= weight
            if mark < 0:
                return node
        return tied[-1][0]
