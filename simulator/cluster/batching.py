"""Serving several requests at once on one node: what a batch costs.

The reference measurements are batch 1 (one prompt per call), so hybridsim cannot *know* what a batch
costs on an M1 Pro or an A100; it can only let an operator explore an assumption. The assumption here is
the simplest one that keeps the measured batch-1 numbers exact and gives batching the effect Samsi et al.
report (more requests per joule, each request a little slower):

* a batch is padded to its largest member, so it costs what that member costs alone (the largest runtime
  and the largest energy among the members, from the profile's cost model) ...
* ... times a growth factor per extra member: runtime x (1 + runtime_growth * (b - 1)) and energy x
  (1 + energy_growth * (b - 1)) for a batch of b requests. With growth 0 a batch is free riding on its
  largest request; with growth 1 it is no better than serving the members one after another at the
  largest member's cost.
* every member starts and finishes with the batch; the batch's energy is shared among its members in
  proportion to what each would have cost alone (`simulator/energy.py: batch_share`, the energy path).

A node forms a batch when it frees up, from up to `max_batch` requests waiting in its queue; a request that
finds the node idle starts at once (no waiting for a batch to fill). `max_batch: 1` is batch-1 serving.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BatchModel:
    """How many requests a node serves together, and what that batch costs relative to its largest member."""

    max_batch: int = 1
    """Most requests served together on one node (1: one at a time, as measured)."""
    runtime_growth: float = 0.1
    """Extra runtime per extra member, as a fraction of the largest member's runtime (an assumption)."""
    energy_growth: float = 0.1
    """Extra energy per extra member, as a fraction of the largest member's energy (an assumption)."""

    def batch_runtime(self, runtimes: list[float]) -> float:
        """Seconds the members take served together (their energy: `energy.batch_share`)."""
        return max(runtimes) * (1.0 + self.runtime_growth * (len(runtimes) - 1))
