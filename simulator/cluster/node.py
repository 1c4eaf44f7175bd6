"""One machine in the rack: it serves the requests it is given, one (or one batch) at a time.

A node is either busy or idle. Busy, it draws what the profile says the request costs; idle, it draws its
idle power. It keeps its own small ledger while the day goes on (how long it was busy, how many requests it
served): the busy time gives its idle time, and both can be checked against the per-request records
afterwards. Energy is not kept here: it is computed once, from the per-request records, by
`simulator/energy.py`.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .pool import Pool


class Node:
    """A server of one system (an M1 Pro laptop, an A100 box) inside a pool."""

    __slots__ = (
        "index",
        "local",
        "pool",
        "queue",
        "busy",
        "current",
        "busy_s",
        "served",
        "pred_end",
        "on_done",
    )

    def __init__(self, index: int, local: int, pool: Pool, queue: deque[int]) -> None:
        self.index = index
        """Position among all nodes of the cluster (the `node` column of the records)."""
        self.local = local
        """Position within its pool."""
        self.pool = pool
        """The pool (system) the node belongs to."""
        self.queue = queue
        """Requests waiting for this node: its own FIFO, or the pool's shared queue."""
        self.busy = False
        """True while serving."""
        self.current: Any = -1
        """The request (or list of requests, when batching) in service."""
        self.busy_s = 0.0
        """Seconds spent serving so far."""
        self.served = 0
        """Requests finished (or started, while the run is going)."""
        self.pred_end = 0.0
        """When the router expects the request in service to finish (only tracked for routers that ask)."""
        self.on_done: Any = None
        """The completion callback, bound once (the event loop attaches it to every service timeout)."""

    @property
    def system(self) -> str:
        """Name of the pool, which is the system's name in the scenario."""
        return self.pool.name

    @property
    def queue_length(self) -> int:
        """Requests waiting in this node's queue (the pool's, under a shared queue)."""
        return len(self.queue)

    def __repr__(self) -> str:
        state = "busy" if self.busy else "idle"
        return f"Node({self.pool.name}#{self.local}, {state}, queue={len(self.queue)})"
