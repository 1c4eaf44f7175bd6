"""A finished run, as the engine hands it over: the per-request table and the nodes' own books.

The engine fills it; the summary (`summary.py`) and the scenario read it. It lives here, below the engine,
so that reading a run never needs the machinery that produced it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..cluster.costs import SystemCosts
from ..energy import idle_energy
from .records import RequestTable


@dataclass(frozen=True)
class RunResult:
    """A finished run: the per-request table, the nodes' own books and what is needed to read them."""

    table: RequestTable
    systems: tuple[str, ...]
    node_system: np.ndarray
    """Pool position of each node."""
    idle_power_w: np.ndarray
    """Idle power of each node (W)."""
    ledger: dict[str, np.ndarray]
    """Each node's busy_s and served, as kept during the run."""
    horizon_s: float
    """End of the run: last finish, or end of the arrival window if later."""
    costs: dict[str, SystemCosts]
    """Every request priced on every pool, served there or not (closed-form, no queue)."""
    warmup_s: float
    outputs_cut: int = 0
    passes: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    """Continuously batching pools' pass logs (`cluster.serving_records.PassLog.columns`), by pool."""
    preemptions: dict[str, int] = field(default_factory=dict)
    """Preemptions per continuously batching pool."""
    kv_capacity: dict[str, int] = field(default_factory=dict)
    """KV tokens one node of each continuously batching pool holds."""

    @property
    def idle_s(self) -> np.ndarray:
        """Seconds each node stood idle between t = 0 and the horizon."""
        return np.maximum(self.horizon_s - self.ledger["busy_s"], 0.0)

    @property
    def idle_j(self) -> np.ndarray:
        """Idle energy of each node (J)."""
        return idle_energy(self.idle_power_w, self.ledger["busy_s"], self.horizon_s)
