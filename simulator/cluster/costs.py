"""What each request would cost on each kind of machine, worked out once, before the day starts.

An operator who knows tomorrow's requests (their prompt and answer lengths) can price every one of them on
every kind of node in the building without running anything: the profile's cost model gives the energy
and the runtime of a request served alone. The simulation only decides *where* and *when* each request
runs; *what* it costs there is looked up here. So the costs are computed up front, vectorised, one
column per system, and the event loop only reads them.

The energy of a request alone comes from the one energy path (`simulator/energy.py`, which also applies
a power cap); the runtime is the cost model's, stretched by the cap's `runtime_factor` (Samsi et al., "From
words to watts", 2023: capping an A100 from 250 W to 175 W made inference 6.7% slower, to 150 W 19.5%).
A router does not know a request's true length, only a prediction; `CostEstimator` prices the prediction
(what the router believes), never the truth.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass

import numpy as np

from hybridsim.core.profile_model import CostModel

from ..energy import NO_CAP, PowerCap, request_energy
from ..profiles.cost_models import outside_mask


@dataclass(frozen=True)
class SystemCosts:
    """Every request of a run priced on one system, as if served alone (float64 columns, one per request)."""

    runtime_s: np.ndarray
    energy_j: np.ndarray
    """CPU + GPU energy served alone, within the profile's scope (`energy.request_energy`; idle power is
    accounted per node)."""
    cpu_energy_j: np.ndarray
    gpu_energy_j: np.ndarray
    outside_range: np.ndarray
    """bool: the request's input or output length lies outside the profile's measured range."""
    negative_runtime: int
    """How many runtimes the cost model gave below zero (possible with the 'paper' fits); set to 0."""


def price_requests(
    model: CostModel, input_tokens: np.ndarray, output_tokens: np.ndarray, cap: PowerCap = NO_CAP
) -> SystemCosts:
    """Price every request on the system behind `model`, under `cap` (vectorised)."""
    m = np.asarray(input_tokens, dtype=np.float64)
    n = np.asarray(output_tokens, dtype=np.float64)
    runtime = np.asarray(model.runtime_s(m, n), dtype=np.float64) * cap.runtime_factor
    alone = request_energy(model, m, n, cap)
    negative = int(np.count_nonzero(runtime < 0))
    runtime = np.maximum(runtime, 0.0)
    return SystemCosts(runtime, alone.energy_j, alone.cpu_j, alone.gpu_j, outside_mask(model, m, n), negative)


class CostEstimator:
    """What a router believes a request costs on one system: the cost model at its *predicted* length.

    With predictions known up front (max_tokens, a noisy oracle) every estimate is computed in one
    vectorised call and looked up by request index; with predictions that learn while the day goes on
    (a running mean) the estimate is computed per distinct (input, predicted output) pair and cached.
    The model is the one that prices the served requests (clamping or extrapolating as the scenario says).
    """

    def __init__(self, model: CostModel, cap: PowerCap = NO_CAP) -> None:
        self.model = model
        """The system's cost model (the one that prices the served requests)."""
        self.cap = cap
        self._energy: array | None = None
        self._runtime: array | None = None
        self._cache: dict[tuple[int, int], tuple[float, float]] = {}

    def prime(self, input_tokens: np.ndarray, predicted_output: np.ndarray) -> None:
        """Estimate every request at once from predictions fixed before the run."""
        costs = price_requests(self.model, input_tokens, np.maximum(np.rint(predicted_output), 1.0), self.cap)
        self._energy = array("d", costs.energy_j.tobytes())
        self._runtime = array("d", costs.runtime_s.tobytes())

    def estimate(self, index: int, input_tokens: int, predicted_output: float) -> tuple[float, float]:
        """(energy J, runtime s) the router expects for request `index` on this system."""
        if self._energy is not None:
            return self._energy[index], self._runtime[index]  # type: ignore[index]
        key = (input_tokens, max(int(predicted_output + 0.5), 1))
        hit = self._cache.get(key)
        if hit is None:
            costs = price_requests(self.model, np.array([key[0]]), np.array([key[1]]), self.cap)
            hit = self._cache[key] = (float(costs.energy_j[0]), float(costs.runtime_s[0]))
        return hit
