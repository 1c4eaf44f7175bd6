"""All on one system: the homogeneous datacenter, the workload-unaware baseline.

"M1-Pro only" and "A100 only" in the paper's threshold figures: every request goes to one pool, whatever
its length (within the pool, to the node with the fewest requests ahead). Comparing a hybrid policy with
`all_on` the big system is comparing it with the status quo.
"""

from __future__ import annotations

import numpy as np

from ..cluster import Cluster, Node, Pool
from .base import Request, RoutingPolicy, pool_named


class AllOn(RoutingPolicy):
    """Send every request to pool `system`."""

    def __init__(self, system: str) -> None:
        self.system = system
        """The pool that serves everything."""
        self._pool: Pool | None = None

    def bind(self, view: Cluster, rng: np.random.Generator) -> None:
        self._pool = pool_named(view, self.system, "system")

    def route(self, request: Request, view: Cluster) -> Node:
        return self._pool.least_loaded()[1]  # type: ignore[union-attr]
