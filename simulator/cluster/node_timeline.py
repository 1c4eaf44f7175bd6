"""The batching nodes' own events, kept off SimPy's queue and played up to a time when someone looks.

A batching node changes state at the end of each prefill pass and each run of decode iterations. Nobody
outside the node sees those moments except through the router, which looks only when a request arrives
(and the ledger, read after the run). So the nodes' events wait in a heap of their own, and the engine
plays them, in time order across every batching node, up to each arrival before the router looks, and to
the end after the last arrival. Each event then costs a heap push and pop instead of a SimPy event; the
order, and so every result, is what one SimPy queue would give, except that a node event and an arrival
at the very same instant always resolve node first (SimPy orders such a tie by scheduling order), and that a
learning predictor hears of a batching node's finishes between two arrivals after those of request-level
pools in the same interval (it hears of all of them before the next prediction either way).

A node has one pending event at a time (`ContinuousNode.wake` holds its sequence number); moving it (a
run cut short by a newcomer) leaves the old entry in the heap, skipped when it surfaces.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from heapq import heappop, heappush
from typing import Protocol

import simpy
from simpy.events import Timeout


class Waking(Protocol):
    wake: int
    """Sequence number of the node's one pending event (older entries of the node are stale)."""


class NodeTimeline:
    """A heap of (time, sequence, node, action): the batching nodes' pending events."""

    def __init__(self) -> None:
        self.now = 0.0
        """The batching nodes' clock: the event being played, else the last time played up to (s)."""
        self._heap: list[tuple[float, int, Waking, Callable[[], None]]] = []
        self._sequence = 0

    def at(self, when: float, node: Waking, action: Callable[[], None]) -> None:
        """Make `action` (at `when`) the node's one pending event, replacing any earlier one."""
        self._sequence += 1
        node.wake = self._sequence
        heappush(self._heap, (when, self._sequence, node, action))

    def next_time(self) -> float:
        """When the next pending entry falls (inf if none; it may be stale)."""
        return self._heap[0][0] if self._heap else float("inf")

    def play_until(self, until: float) -> None:
        """Play every event at or before `until`, in order of time (ties: in order of scheduling)."""
        heap = self._heap
        while heap and heap[0][0] <= until:
            when, sequence, node, action = heappop(heap)
            if sequence != node.wake:
                continue
            self.now = when
            action()
        if until > self.now and until != float("inf"):
            self.now = until


class SimPyTimeline:
    """The same two verbs on SimPy's own queue: every node event a SimPy event, as the nodes ran before
    `NodeTimeline`. Kept as the yardstick: the tests check that both give the same answers, and the
    per-iteration reference (`benchmarks/continuous_batching.py`) schedules its iterations with it."""

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self._sequence = 0

    @property
    def now(self) -> float:
        return float(self.env.now)

    def at(self, when: float, node: Waking, action: Callable[[], None]) -> None:
        self._sequence += 1
        node.wake = self._sequence
        Timeout(self.env, max(when - self.env.now, 0.0)).callbacks.append(
            partial(self._fire, node, self._sequence, action)
        )

    @staticmethod
    def _fire(node: Waking, sequence: int, action: Callable[[], None], _event: object) -> None:
        if node.wake == sequence:  # else moved earlier by a newcomer (a cut run)
            action()
