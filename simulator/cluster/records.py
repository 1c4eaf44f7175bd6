"""The floor's notebook: for every request, when its service began and ended, and where it ran.

The event loop writes here and nowhere else. A datacenter serving a million requests a day cannot keep a
Python object per request around, and does not need to: the request's id is its row number, and each
column is a preallocated flat array. Once the day is over the engine turns these columns (and the costs
computed up front) into the finished per-request table, `metrics/records.py: RequestTable`.
"""

from __future__ import annotations

from array import array

NOT_SERVED = -1


class RequestRecords:
    """Preallocated columns the event loop fills in, one slot per request (no object per request)."""

    def __init__(self, requests: int) -> None:
        self.start_s = array("d", bytes(8 * requests))
        """When service began (s since the start of the run)."""
        self.finish_s = array("d", bytes(8 * requests))
        """When the answer was complete."""
        self.node = array("i", [NOT_SERVED]) * requests
        """Global index of the node that served the request; -1 until it is served."""
        self.energy_scale = array("d", [1.0]) * requests
        """The request's energy / its energy served alone (1 unless it shared a batch)."""
