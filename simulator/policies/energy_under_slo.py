"""Energy under an SLO: the cheapest node that is expected to answer in time.

An operator with a latency target (say 30 s to a full answer) wants the least energy that still meets it.
For each pool the router expects the request to finish after the soonest queue's wait plus its runtime
there (predicted length); among the pools that meet `slo_s` it picks the lowest energy. If none does, it
picks the pool expected to finish first: a late answer beats a later one. With `idle_aware: true`
energy is counted above idle power (see `cost_greedy.py`).
"""

from __future__ import annotations

import numpy as np

from hybridsim.core.errors import HybridsimError

from ..cluster import Cluster, Node, Pool
from .base import Request, RoutingPolicy, offers, pools_named


class EnergyUnderSlo(RoutingPolicy):
    """Send each request to the lowest-energy pool expected to finish it within `slo_s`."""

    needs_estimates = True

    def __init__(self, slo_s: float, systems: list[str] | None = None, idle_aware: bool = False) -> None:
        if slo_s <= 0:
            raise HybridsimError(f"params.slo_s: must be > 0, got {slo_s}")
        self.slo_s = slo_s
        """Latency target: arrival to last token (s)."""
        self.systems = systems
        """Pools to choose among (default: all with nodes)."""
        self.idle_aware = idle_aware
        """Price energy above idle power (marginal), not the profile's whole E(m, n)."""
        self._pools: list[Pool] = []

    def bind(self, view: Cluster, rng: np.random.Generator) -> None:
        self._pools = pools_named(view, self.systems, "systems")

    def route(self, request: Request, view: Cluster) -> Node:
        cheapest, cheapest_node = float("inf"), None
        soonest, soonest_node = float("inf"), self._pools[0].nodes[0]
        for energy, wait, runtime, node in offers(self._pools, request, self.idle_aware):
            done = wait + runtime
            if done <= self.slo_s and energy < cheapest:
                cheapest, cheapest_node = energy, node
            if done < soonest:
                soonest, soonest_node = done, node
        return cheapest_node if cheapest_node is not None else soonest_node
