"""A pool is a row of identical machines of one system, and the way requests queue for them.

Think of a counter with several clerks. Either every clerk has a line of their own (`fifo`: the router
picks the clerk, and a request waits behind that clerk's earlier customers even when another clerk is free),
or there is one line for the whole counter (`shared`: the router's pick stands for the counter; the request
goes to the clerk it picked if that clerk is free, else to any free clerk, else it waits in the one line and
the first clerk to free up calls it). Either way a clerk serves one customer at a time, or up to `max_batch`
together (see `batching.py`).

The pool runs the clock-work of a SimPy discrete-event model: a request handed to an idle node starts at
once and schedules a `Timeout` for its service; when the timeout fires the node records the finish, and
pulls the next request from its queue or goes idle. There is no SimPy process per request: one event per
service is all the model needs, which keeps a million-request day fast.

For routers that want to know how long a newcomer would wait (cost-aware policies), the pool also keeps a
running *estimate* of each node's backlog from the router's own predictions (never the true lengths).
"Which node has the fewest requests" and "which frees up first" are answered from heaps over those per-node
figures (`min_index.py`), built the first time a router asks: O(log n) per request on a row of ten
thousand machines, with the same answers and ties as a scan of every node.
"""

from __future__ import annotations

from array import array
from collections import deque
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import simpy
from simpy.events import Timeout

from ..energy import batch_share
from ..request import Request
from .batching import BatchModel
from .continuous_node import ContinuousSetup
from .costs import CostEstimator, SystemCosts
from .min_index import CountIndex, MinIndex
from .node import Node

if TYPE_CHECKING:
    from .cluster import Cluster

DISCIPLINES = ("fifo", "shared")


@dataclass(frozen=True)
class PoolSetup:
    """What the operator decides about a pool: which system, how many nodes, how they queue."""

    name: str
    count: int
    idle_power_w: float
    """Power one idle node draws (W), within the profile's energy scope."""
    discipline: str = "fifo"
    """'fifo': a queue per node; 'shared': one queue per pool."""
    batch: BatchModel = BatchModel()
    serving: ContinuousSetup | None = None
    """Set for a continuously batching pool (`serving: continuous`, see `continuous.py`)."""


class Pool:
    """The nodes of one system, their queues, and the events that move requests through them."""

    def __init__(self, setup: PoolSetup, first_index: int, cluster: Cluster) -> None:
        if setup.discipline not in DISCIPLINES:
            raise ValueError(f"queue discipline {setup.discipline!r} is not one of {DISCIPLINES}")
        self.name = setup.name
        """The system's name in the scenario (`m1`, `a100`, ...)."""
        self.setup = setup
        self.cluster = cluster
        self.shared = setup.discipline == "shared"
        self.queue: deque[int] = deque()
        """The pool's shared queue (unused under per-node FIFO)."""
        self.nodes = [
            Node(first_index + k, k, self, self.queue if self.shared else deque()) for k in range(setup.count)
        ]
        self.idle: dict[Node, None] = dict.fromkeys(reversed(self.nodes))
        """Idle nodes of a shared pool, as a stack: the node freed last on top (last in the dict's order); at
        the start, the lowest-numbered. A dict, so that a router naming any idle node takes it out in O(1)."""
        self.loads = [0] * setup.count
        """Requests waiting at or served by each node (per-node FIFO)."""
        self.free_at = [0.0] * setup.count
        """When the router expects each node to have finished everything it was given (FIFO, estimates;
        0 for an idle node, so that idle nodes come first)."""
        self.queued_est = 0.0
        """Estimated work waiting in the shared queue (s)."""
        self.pred_end_sum = 0.0
        """Sum over busy nodes of their requests' expected end (shared pools, estimates)."""
        self._fewest: CountIndex | None = None
        """Watches `loads` once a router has asked for the least-loaded node (O(log n) per question)."""
        self._first_free: MinIndex | None = None
        """Watches `free_at` once a router has asked for the soonest-free node."""
        self.estimator: CostEstimator | None = None
        """What the router believes requests cost here (set before the run)."""
        self._runtime = array("d")
        """Each request's true service time here (s), as a flat array the event loop
        indexes (not for routers).
        """
        self._energy = array("d")
        """Each request's active energy here served alone (J): what a batch's share is worked out from."""
        batching = setup.batch.max_batch > 1
        for node in self.nodes:
            node.on_done = partial(self._finish_batch if batching else self._finish, node)
        self.submit = self._submit_shared if self.shared else self._submit_fifo

    # -- what a router may look at ---------------------------------------------------------------------

    @property
    def count(self) -> int:
        return len(self.nodes)

    @property
    def waiting(self) -> int:
        """Requests queued in this pool, not yet in service."""
        if self.shared:
            return len(self.queue)
        return sum(len(node.queue) for node in self.nodes)

    @property
    def in_service(self) -> int:
        """Nodes busy right now."""
        return sum(node.busy for node in self.nodes)

    def least_loaded(self) -> tuple[float, Node]:
        """(requests ahead of a newcomer per server, the node it should join): the
        join-shortest-queue view.
        """
        if self.shared:
            if self.idle:
                return 0.0, next(reversed(self.idle))
            return (len(self.queue) + 1) / len(self.nodes), self.nodes[0]
        if self._fewest is None:
            self._fewest = CountIndex(self.loads)
        local = self._fewest.smallest()
        return float(self.loads[local]), self.nodes[local]

    def soonest(self) -> tuple[float, Node]:
        """(expected wait in s, node) of the node the router expects to start a newcomer soonest."""
        now = self.cluster.env.now
        if self.shared:
            if self.idle:
                return 0.0, next(reversed(self.idle))
            backlog = self.queued_est + self.pred_end_sum - len(self.nodes) * now
            return max(backlog, 0.0) / len(self.nodes), self.nodes[0]
        free_at = self.free_at
        if self._first_free is None:
            self._first_free = MinIndex(free_at)
        while True:
            local = self._first_free.smallest()
            first, node = free_at[local], self.nodes[local]
            if first > now or not node.busy:
                return max(first - now, 0.0), node
            # Busy past its predicted end: the router notices and expects it to overrun as much again.
            pushed = now + max(now - node.pred_end, 1e-6)
            free_at[local] += pushed - node.pred_end
            node.pred_end = pushed
            self._first_free.changed(local)

    def estimate(self, request: Request) -> tuple[float, float]:
        """(energy J, runtime s) the router expects `request` to cost on this system alone."""
        assert self.estimator is not None, "load() attaches the estimator before the run"
        return self.estimator.estimate(request.index, request.input_tokens, request.predicted_output_tokens)

    # -- the event loop ----------------------------------------------------------------------------------

    def load(self, costs: SystemCosts, estimator: CostEstimator) -> None:
        """Attach this run's per-request costs (read by the event loop as flat arrays)."""
        self.estimator = estimator
        self._runtime = array("d", costs.runtime_s.tobytes())
        self._energy = array("d", costs.energy_j.tobytes())

    def _submit_fifo(self, node: Node, index: int) -> None:
        local = node.local
        self.loads[local] += 1
        if self._fewest is not None:
            self._fewest.changed(local)
        if self.cluster.track:
            now, ahead = self.cluster.env.now, self.free_at[local]
            self.free_at[local] = (ahead if ahead > now else now) + self.cluster.est_runtime[index]
            if self._first_free is not None:
                self._first_free.changed(local)
        if node.busy:
            node.queue.append(index)
        else:
            self._start(node, index)

    def _submit_shared(self, node: Node, index: int) -> None:
        if not node.busy:
            del self.idle[node]
            self._start(node, index)
        elif self.idle:
            self._start(self.idle.popitem()[0], index)
        else:
            self.queue.append(index)
            if self.cluster.track:
                self.queued_est += self.cluster.est_runtime[index]

    def _start(self, node: Node, index: int) -> None:
        cluster = self.cluster
        env = cluster.env
        now = env.now
        service = self._runtime[index]
        node.busy = True
        node.current = index
        node.busy_s += service
        node.served += 1
        records = cluster.records
        records.start_s[index] = now
        records.node[index] = node.index
        if cluster.track:
            self._expect(node, now, cluster.est_runtime[index])
        Timeout(env, service).callbacks.append(node.on_done)

    def _finish(self, node: Node, _event: simpy.Event) -> None:
        cluster = self.cluster
        index = node.current
        cluster.records.finish_s[index] = cluster.env.now
        if cluster.observer is not None:
            cluster.observer(index)
        if cluster.track:
            self._unexpect(node)
        if not self.shared:
            self.loads[node.local] -= 1
            if self._fewest is not None:
                self._fewest.changed(node.local)
        queue = node.queue
        if queue:
            following = queue.popleft()
            if self.shared and cluster.track:
                self.queued_est -= cluster.est_runtime[following]
            self._start(node, following)
        else:
            node.busy = False
            if self.shared:
                self.idle[node] = None

    def _expect(self, node: Node, now: float, estimate: float) -> None:
        node.pred_end = now + estimate
        if self.shared:
            self.pred_end_sum += node.pred_end

    def _unexpect(self, node: Node) -> None:
        now = self.cluster.env.now
        if self.shared:
            self.pred_end_sum -= node.pred_end
        else:
            # The router learns the request is done: shift the node's backlog by the prediction's error.
            self.free_at[node.local] = self.free_at[node.local] + now - node.pred_end if node.queue else 0.0
            if self._first_free is not None:
                self._first_free.changed(node.local)

    # -- batching ----------------------------------------------------------------------------------------

    def _finish_batch(self, node: Node, _event: simpy.Event) -> None:
        cluster = self.cluster
        now = cluster.env.now
        members = node.current if isinstance(node.current, list) else [node.current]
        for index in members:
            cluster.records.finish_s[index] = now
            if cluster.observer is not None:
                cluster.observer(index)
        if cluster.track:
            self._unexpect(node)
        if not self.shared:
            self.loads[node.local] -= len(members)
            if self._fewest is not None:
                self._fewest.changed(node.local)
        queue = node.queue
        if not queue:
            node.busy = False
            if self.shared:
                self.idle[node] = None
            return
        batch = [queue.popleft() for _ in range(min(self.setup.batch.max_batch, len(queue)))]
        if self.shared and cluster.track:
            self.queued_est -= sum(cluster.est_runtime[index] for index in batch)
        self._start_batch(node, batch)

    def _start_batch(self, node: Node, batch: list[int]) -> None:
        cluster = self.cluster
        now = cluster.env.now
        service = self.setup.batch.batch_runtime([self._runtime[index] for index in batch])
        scale = batch_share([self._energy[index] for index in batch], self.setup.batch.energy_growth)
        records = cluster.records
        for index in batch:
            records.start_s[index] = now
            records.node[index] = node.index
            records.energy_scale[index] = scale
        node.busy = True
        node.current = batch
        node.busy_s += service
        node.served += len(batch)
        if cluster.track:
            self._expect(node, now, max(cluster.est_runtime[index] for index in batch))
        Timeout(cluster.env, service).callbacks.append(node.on_done)
