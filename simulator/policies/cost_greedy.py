"""Cost greedy: each request where it is cheapest right now, in energy and in time together.

For each pool the router prices the request at its predicted length, U = lam * E + (1 - lam) * T with
E the energy it would cost there and T = expected wait in that pool's soonest queue + its runtime there.
`lam` = 1 is pure energy (it ignores queues), `lam` = 0 is pure latency. The two terms have different units;
with `reference` set to a pool's name both are divided by the request's own cost on that pool (energy, and
runtime with no wait), so U = 1 means "as good as the reference system with an empty queue", the same
normalisation as the closed-form threshold analysis. Without `reference`, E is in joules and T in seconds.

With `idle_aware: true` E is the *marginal* energy, E - idle power x runtime: a node that stays powered
on draws its idle power anyway, so serving a request there costs only what it draws above idle. This is
what the operator's bill sees; the profile's E(m, n) alone overstates what a busy A100 adds.
Ties go to the pool listed first.
"""

from __future__ import annotations

import numpy as np

from hybridsim.core.errors import HybridsimError

from ..cluster import Cluster, Node, Pool
from .base import Request, RoutingPolicy, offers, pool_named, pools_named


class CostGreedy(RoutingPolicy):
    """Send each request to the pool minimising lam * E + (1 - lam) * (wait + runtime)."""

    needs_estimates = True

    def __init__(
        self,
        lam: float = 0.5,
        reference: str | None = None,
        systems: list[str] | None = None,
        idle_aware: bool = False,
    ) -> None:
        if not 0.0 <= lam <= 1.0:
            raise HybridsimError(f"params.lam: must be between 0 and 1, got {lam}")
        self.lam = lam
        """Weight of energy against time (0..1)."""
        self.reference = reference
        """Pool whose per-request cost normalises both terms (None: joules and seconds as they are)."""
        self.systems = systems
        """Pools to choose among (default: all with nodes)."""
        self.idle_aware = idle_aware
        """Price energy above idle power (marginal), not the profile's whole E(m, n)."""
        self._pools: list[Pool] = []
        self._reference: Pool | None = None

    def bind(self, view: Cluster, rng: np.random.Generator) -> None:
        self._pools = pools_named(view, self.systems, "systems")
        self._reference = pool_named(view, self.reference, "reference") if self.reference else None

    def route(self, request: Request, view: Cluster) -> Node:
        lam = self.lam
        energy_unit = time_unit = 1.0
        if self._reference is not None:
            energy_unit, time_unit = self._reference.estimate(request)
            energy_unit, time_unit = max(energy_unit, 1e-12), max(time_unit, 1e-12)
        best_cost, best = float("inf"), self._pools[0].nodes[0]
        for energy, wait, runtime, node in offers(self._pools, request, self.idle_aware):
            cost = lam * energy / energy_unit + (1.0 - lam) * (wait + runtime) / time_unit
            if cost < best_cost:
                best_cost, best = cost, node
        return best
