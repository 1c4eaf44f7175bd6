"""Token join-shortest-queue: the batching node holding the least KV work, counted in tokens.

A batching GPU's load is not how many requests it holds but how many tokens: a node running three
requests with 4,000-token prompts is busier than one running ten chat turns. This router (like
splitwise-sim's token-JSQ) sends each request to the node with the fewest KV tokens held by its running
batch plus prompt tokens waiting in its line, as the node last reported them (at its last iteration
boundary). It balances batching pools only: a request-level node has no KV cache to count.
Ties go to the node listed first.
"""

from __future__ import annotations

import numpy as np

from hybridsim.core.errors import HybridsimError

from ..cluster import Cluster
from ..cluster.continuous import ContinuousPool
from ..cluster.continuous_node import ContinuousNode
from .base import Request, RoutingPolicy, pools_named


class TokenJsq(RoutingPolicy):
    """Send each request to the batching node with the least KV load (held + waiting prompt tokens)."""

    def __init__(self, systems: list[str] | None = None) -> None:
        self.systems = systems
        """Batching pools to choose among (default: every batching pool with nodes)."""
        self._pools: list[ContinuousPool] = []

    def bind(self, view: Cluster, rng: np.random.Generator) -> None:
        if self.systems is None:
            pools = [pool for pool in view.pools.values() if isinstance(pool, ContinuousPool) and pool.nodes]
            if not pools:
                raise HybridsimError("params.systems: no pool serves continuously (serving: continuous)")
        else:
            pools = pools_named(view, self.systems, "systems")
            for k, pool in enumerate(pools):
                if not isinstance(pool, ContinuousPool):
                    raise HybridsimError(
                        f"params.systems.{k}: pool {pool.name!r} serves request by request; token_jsq "
                        "balances the KV load of batching pools (serving: continuous)"
                    )
        self._pools = pools  # type: ignore[assignment]

    def route(self, request: Request, view: Cluster) -> ContinuousNode:  # type: ignore[override]
        best_load, best = self._pools[0].least_kv_load()
        for pool in self._pools[1:]:
            load, node = pool.least_kv_load()
            if load < best_load:
                best_load, best = load, node
        return best
