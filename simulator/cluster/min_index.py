"""Which node of a pool has the fewest requests, or frees up first: answered without looking at every node.

A router in front of a row of ten thousand machines cannot afford to ask each one how busy it is for every
request. The pool keeps its per-node figures (requests queued at each node, when each is expected to be
free) in plain lists, as before; `MinIndex` watches one such list and answers "which position holds the
smallest value, the lowest-numbered one among ties" in O(log n) amortised time, exactly as
`values.index(min(values))` would.

It is a binary heap of (value, position) entries with lazy invalidation: whenever the pool changes a value
it calls `changed(position)`, which pushes the new entry and leaves the old one in place; a query pops
entries until the top one still matches its position's current value. Every position always has one
entry with its current value, so the top valid entry is the smallest value, and among equal values the
smallest position (tuples compare that way): the same answer, with the same ties, as a linear scan. When
stale entries pile up (more than a few per node), the heap is rebuilt from the list, so memory stays
O(n) however long the day.
"""

from __future__ import annotations

from heapq import heapify, heappop, heappush


class MinIndex:
    """Position of the smallest entry of a list the owner keeps (ties: the lowest position)."""

    __slots__ = ("values", "_heap", "_limit")

    def __init__(self, values: list[float] | list[int]) -> None:
        self.values = values
        """The watched list (the owner's own; it must call `changed` after writing to it)."""
        self._heap: list[tuple[float, int]] = []
        self._limit = 4 * len(values) + 64
        self.rebuild()

    def rebuild(self) -> None:
        """Forget every stale entry: one entry per position, with its current value."""
        self._heap = [(value, position) for position, value in enumerate(self.values)]
        heapify(self._heap)

    def changed(self, position: int) -> None:
        """The owner has written a new value at `position`."""
        heap = self._heap
        heappush(heap, (self.values[position], position))
        if len(heap) > self._limit:
            self.rebuild()

    def smallest(self) -> int:
        """The position of the smallest value (the lowest such position among ties)."""
        heap, values = self._heap, self.values
        while True:
            value, position = heap[0]
            if values[position] == value:
                return position
            heappop(heap)


class CountIndex:
    """`MinIndex` for a list of non-negative integers (requests per node): the same answers, faster.

    An entry is one integer, value x n + position, so the heap compares plain integers rather than tuples;
    the order (value first, then position) is the same.
    """

    __slots__ = ("values", "_heap", "_limit", "_stride")

    def __init__(self, values: list[int]) -> None:
        self.values = values
        """The watched list (non-negative integers; the owner calls `changed` after writing to it)."""
        self._stride = max(len(values), 1)
        self._heap: list[int] = []
        self._limit = 4 * len(values) + 64
        self.rebuild()

    def rebuild(self) -> None:
        """Forget every stale entry: one entry per position, with its current value."""
        stride = self._stride
        self._heap = [value * stride + position for position, value in enumerate(self.values)]
        heapify(self._heap)

    def changed(self, position: int) -> None:
        """The owner has written a new value at `position`."""
        heap = self._heap
        heappush(heap, self.values[position] * self._stride + position)
        if len(heap) > self._limit:
            self.rebuild()

    def smallest(self) -> int:
        """The position of the smallest value (the lowest such position among ties)."""
        heap, values, stride = self._heap, self.values, self._stride
        while True:
            value, position = divmod(heap[0], stride)
            if values[position] == value:
                return position
            heappop(heap)
