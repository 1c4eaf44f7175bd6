"""Marginal energy: short requests where they cost least, knowing what a batching GPU really adds.

The paper's threshold routing compares an M1 Pro and an A100 each serving one request alone. A batching
GPU does not: a request joining a running batch of twenty adds its prefill and a sliver of each
iteration (the weights are read once per iteration, whoever is in it), far below its batch-1 cost. So
this router prices a request on a batching pool at its *marginal* energy on that pool's least-loaded
node, as the batch stands (`ContinuousPool.marginal`), and on a request-level pool at what the profile
says it costs alone (`idle_aware`: above idle power, as in `cost_greedy`). Requests larger than
`threshold` tokens (prompt + predicted answer) always go to `above`; the rest go where they cost least,
unless the cheaper pool's expected wait exceeds `max_wait_s`.
"""

from __future__ import annotations

import numpy as np

from hybridsim.core.errors import HybridsimError

from ..cluster import Cluster, Node, Pool
from ..cluster.continuous import ContinuousPool
from ..cluster.continuous_node import ContinuousNode
from .base import Request, RoutingPolicy, pool_named


class MarginalEnergy(RoutingPolicy):
    """Large requests to `above`; the others to whichever of `below`, `above` adds less energy."""

    needs_estimates = True

    def __init__(
        self,
        below: str,
        above: str,
        threshold: float = float("inf"),
        max_wait_s: float = float("inf"),
        idle_aware: bool = True,
    ) -> None:
        if threshold < 0:
            raise HybridsimError(f"params.threshold: must be >= 0, got {threshold}")
        if max_wait_s < 0:
            raise HybridsimError(f"params.max_wait_s: must be >= 0, got {max_wait_s}")
        self.below = below
        """The frugal request-level pool (e.g. `m1`)."""
        self.above = above
        """The batching pool (e.g. `gpu`, serving: continuous)."""
        self.threshold = threshold
        """Prompt + predicted answer tokens above which a request always goes to `above`."""
        self.max_wait_s = max_wait_s
        """Longest expected wait accepted in the cheaper pool before the other is taken."""
        self.idle_aware = idle_aware
        """Price the request-level pool above its idle power (what the bill sees)."""
        self._below: Pool | ContinuousPool | None = None
        self._above: ContinuousPool | None = None

    def bind(self, view: Cluster, rng: np.random.Generator) -> None:
        self._below = pool_named(view, self.below, "below")
        above = pool_named(view, self.above, "above")
        if not isinstance(above, ContinuousPool):
            raise HybridsimError(
                f"params.above: pool {self.above!r} must serve continuously (serving: continuous)"
            )
        self._above = above

    def _offer(
        self, pool: Pool | ContinuousPool, request: Request
    ) -> tuple[float, float, Node | ContinuousNode]:
        """(energy J, expected wait s, node) of serving `request` on `pool`."""
        if isinstance(pool, ContinuousPool):
            _, node = pool.least_kv_load()
            wait = pool.soonest()[0]
            return pool.marginal(request, node)[0], wait, node
        energy, runtime = pool.estimate(request)
        if self.idle_aware:
            energy -= pool.setup.idle_power_w * runtime
        wait, chosen = pool.soonest()
        return energy, wait, chosen

    def route(self, request: Request, view: Cluster) -> Node | ContinuousNode:  # type: ignore[override]
        above = self._above
        assert above is not None and self._below is not None
        if request.input_tokens + request.predicted_output_tokens > self.threshold:
            return above.least_kv_load()[1]
        energy_above, wait_above, node_above = self._offer(above, request)
        energy_below, wait_below, node_below = self._offer(self._below, request)
        if energy_below < energy_above and wait_below <= self.max_wait_s:
            return node_below
        if wait_above > self.max_wait_s and wait_below < wait_above:
            return node_below
        return node_above
