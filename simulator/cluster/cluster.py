"""The datacenter floor: pools of machines of different kinds, and what a router can see of them.

A hybrid datacenter has a few pools (a row of M1 Pro laptops, a rack of A100 boxes), each with its own
queues. A router standing at the door sees the same things a real load balancer sees: which nodes exist,
which are busy, how long their queues are, and (if it keeps the books) how much work it has already sent
each node. It never sees how long a request's answer will really be.

`Cluster` is that floor and that view in one object: policies receive it as `view` and read it; only the
engine and the pools change it.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Sequence

import numpy as np
import simpy

from ..request import Request
from .continuous import ContinuousPool
from .continuous_chunked import ChunkedPrefillPool
from .node import Node
from .node_timeline import NodeTimeline
from .pool import Pool, PoolSetup
from .records import RequestRecords


class Cluster:
    """All pools of a run, the SimPy environment they live in, and the per-request ledger."""

    def __init__(
        self, setups: Sequence[PoolSetup], requests: int = 0, env: simpy.Environment | None = None
    ) -> None:
        self.env = env or simpy.Environment()
        """The SimPy environment: `view.now` is its clock."""
        self.records = RequestRecords(requests)
        """Start, finish, node and batch share of every request (preallocated)."""
        self.track = False
        """Whether the pools keep the router's backlog estimates (set when a policy asks for them)."""
        self.est_runtime = array("d")
        """The router's runtime estimate for each admitted request on the pool it was sent to."""
        self.timeline = NodeTimeline()
        """The batching nodes' pending events, played up to each arrival (`catch_up`)."""
        self.observer: Callable[[int], None] | None = None
        """Called with a request's index when it finishes (learning predictors)."""
        self.pools: dict[str, Pool] = {}
        """Pools by system name, in scenario order."""
        self.nodes: list[Node] = []
        """Every node, in pool order; `node.index` is the position here."""
        for setup in setups:
            if setup.name in self.pools:
                raise ValueError(f"duplicate pool name {setup.name!r}")
            # a ContinuousPool offers the router the same view as a Pool (least_loaded, soonest, estimate,
            # nodes)
            if setup.serving is None:
                pool = Pool(setup, len(self.nodes), self)
            else:
                batching = ChunkedPrefillPool if setup.serving.limits.chunked_prefill else ContinuousPool
                pool = batching(setup, len(self.nodes), self)  # type: ignore[assignment]
            self.pools[setup.name] = pool
            self.nodes.extend(pool.nodes)

    @property
    def now(self) -> float:
        """The simulation clock (s)."""
        return self.env.now

    def catch_up(self, until: float) -> None:
        """Play the batching nodes' events up to `until` (before the router looks; inf: to the end)."""
        self.timeline.play_until(until)

    def pool(self, name: str) -> Pool:
        return self.pools[name]

    def track_estimates(self, requests: int) -> None:
        """Keep the router's backlog estimates (needed by cost- and latency-aware policies)."""
        self.track = True
        self.est_runtime = array("d", bytes(8 * requests))

    def admit(self, node: Node, request: Request) -> None:
        """Hand the routed request to `node` (its pool decides whether it starts or waits)."""
        pool = node.pool
        index = request.index
        if self.track:
            self.est_runtime[index] = pool.estimate(request)[1]
        pool.submit(node, index)

    # -- after the run -----------------------------------------------------------------------------------

    def idle_power_w(self) -> np.ndarray:
        """Idle power of each node (W), by node index."""
        return np.array([node.pool.setup.idle_power_w for node in self.nodes], dtype=np.float64)

    def node_ledger(self) -> dict[str, np.ndarray]:
        """What each node's own books say: busy seconds, requests served."""
        return {
            "busy_s": np.array([node.busy_s for node in self.nodes], dtype=np.float64),
            "served": np.array([node.served for node in self.nodes], dtype=np.int64),
        }

    def system_of_node(self) -> np.ndarray:
        """Pool position (in `pools` order) of each node."""
        order = {name: k for k, name in enumerate(self.pools)}
        return np.array([order[node.pool.name] for node in self.nodes], dtype=np.int64)
