"""Random: each request to a node drawn uniformly from all nodes.

Like round robin it ignores both the request and the hardware; unlike round robin its arrivals at a node
are a thinned (so still Poisson) stream, the textbook case.
"""

from __future__ import annotations

import numpy as np

from ..cluster import Cluster, Node
from .base import BlockDraws, Request, RoutingPolicy


class RandomChoice(RoutingPolicy):
    """Send each request to a uniformly random node (seeded from the scenario)."""

    def __init__(self) -> None:
        self._draws: BlockDraws | None = None
        """Node positions, drawn from the run's policy stream (set by `bind`)."""

    def bind(self, view: Cluster, rng: np.random.Generator) -> None:
        super().bind(view, rng)
        nodes = len(view.nodes)
        self._draws = BlockDraws(lambda size: rng.integers(0, nodes, size=size))

    def route(self, request: Request, view: Cluster) -> Node:
        return view.nodes[self._draws.next()]  # type: ignore[union-attr]
