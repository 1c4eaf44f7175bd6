"""A request at the datacenter's door, as the router sees it: its id, when it came, its prompt, its limit.

The router never sees the answer's true length, only the predictor's guess. Both the floor
(`cluster/`, which queues and serves requests) and the routers (`policies/`) speak about requests, so the
type lives here, below both. There is one object for the whole run, refilled for every arrival: a
datacenter serving a million requests a day keeps columns (`cluster/records.py`), not an object per request.
"""

from __future__ import annotations


class Request:
    """The arriving request, as a router sees it (one instance, refilled for every arrival)."""

    __slots__ = ("index", "arrival_s", "input_tokens", "max_tokens", "predicted_output_tokens")

    def __init__(self) -> None:
        self.index = -1
        """Row of the request in the run (its id)."""
        self.arrival_s = 0.0
        """When it arrived (s)."""
        self.input_tokens = 0
        """Prompt length m (tokens)."""
        self.max_tokens = 0
        """The client's limit on the answer's length."""
        self.predicted_output_tokens = 0.0
        """The predictor's guess of the answer's length n (the truth, under an oracle)."""
