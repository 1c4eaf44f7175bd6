"""Random: each request to a node drawn uniformly from all nodes.

Like round robin it ignores both the request and the hardware; unlike round robin its arrivals at a node
are a thinned (so still Poisson) stream, the textbook case.
"""

from __future__ import annotations

import numpy as np

from ..cluster import Cluster, Node
from .base import Request, RoutingPolicy

_BLOCK = 65536


class RandomChoice(RoutingPolicy):
    """Send each request to a uniformly random node (seeded from the scenario)."""

    def __init__(self) -> None:
        self._rng: np.random.Generator | None = None
        self._draws: list[int] = []
        self._next = 0

    def bind(self, view: Cluster, rng: np.random.Generator) -> None:
        super().bind(view, rng)
        self._rng = rng
        self._draws, self._next = [], 0

    def route(self, request: Request, view: Cluster) -> Node:
        if self._next == len(self._draws):
            rng = self._rng or np.random.default_rng(0)
            self._draws = rng.integers(0, len(view.nodes), size=_BLOCK).tolist()
            self._next = 0
        node = view.nodes[self._draws[self._next]]
        self._next += 1
        return node
