"""Small stand-ins for profiles and request streams, with costs a test can compute by hand."""

from __future__ import annotations

import numpy as np
from hybridsim.simulator.arrivals import RequestStream
from hybridsim.simulator.cluster import NO_CAP, BatchModel, PoolSetup, PowerCap
from hybridsim.simulator.engine import PoolConfig
from numpy.typing import ArrayLike


class LinearCostModel:
    """E = e0 + em*m + en*n (J) with a fixed CPU share; R = r0 + rm*m + rn*n (s)."""

    def __init__(
        self,
        name: str = "fake",
        energy: tuple[float, float, float] = (10.0, 0.5, 2.0),
        runtime: tuple[float, float, float] = (0.1, 0.001, 0.02),
        cpu_share: float = 0.25,
        input_range: tuple[float, float] = (1, 1e9),
        output_range: tuple[float, float] = (1, 1e9),
    ) -> None:
        self.name, self.energy, self.runtime, self.cpu_share = name, energy, runtime, cpu_share
        self.input_range, self.output_range = input_range, output_range

    @staticmethod
    def _linear(c: tuple[float, float, float], m: ArrayLike, n: ArrayLike) -> np.ndarray:
        return c[0] + c[1] * np.asarray(m, dtype=np.float64) + c[2] * np.asarray(n, dtype=np.float64)

    def energy_j(self, m: ArrayLike, n: ArrayLike) -> np.ndarray:
        return self._linear(self.energy, m, n)

    def cpu_energy_j(self, m: ArrayLike, n: ArrayLike) -> np.ndarray:
        return self.cpu_share * self.energy_j(m, n)

    def gpu_energy_j(self, m: ArrayLike, n: ArrayLike) -> np.ndarray:
        return (1.0 - self.cpu_share) * self.energy_j(m, n)

    def runtime_s(self, m: ArrayLike, n: ArrayLike) -> np.ndarray:
        return self._linear(self.runtime, m, n)


# An M1-like system: frugal per token, slow; and an A100-like one: fast, dearer at small sizes.
SLOW = LinearCostModel("slow", energy=(5.0, 0.8, 3.0), runtime=(1.0, 0.02, 0.4))
FAST = LinearCostModel("fast", energy=(60.0, 0.3, 1.5), runtime=(0.2, 0.001, 0.03))


def pool(
    name: str,
    count: int,
    model: LinearCostModel,
    idle_w: float = 10.0,
    queue: str = "fifo",
    max_batch: int = 1,
    growth: float = 0.1,
    cap: PowerCap = NO_CAP,
) -> PoolConfig:
    return PoolConfig(
        PoolSetup(name, count, idle_w, queue, BatchModel(max_batch, growth, growth)),
        model,
        cap=cap,
        profile=model.name,
    )


def stream(
    arrival_s: ArrayLike,
    input_tokens: ArrayLike,
    output_tokens: ArrayLike,
    max_tokens: int = 4096,
    warmup_s: float = 0.0,
) -> RequestStream:
    arrival = np.asarray(arrival_s, dtype=np.float64)
    return RequestStream(
        arrival,
        np.asarray(input_tokens, np.int64),
        np.asarray(output_tokens, np.int64),
        np.full(arrival.size, max_tokens, np.int64),
        warmup_s,
    )


def alpaca_like(size: int, rate: float, seed: int = 1) -> RequestStream:
    """Poisson arrivals with skewed (log-normal) prompt and answer lengths, like Alpaca's."""
    rng = np.random.default_rng(seed)
    m = np.clip(np.rint(rng.lognormal(2.9, 0.6, size)), 2, 2000)
    n = np.clip(np.rint(rng.lognormal(3.8, 0.9, size)), 1, 1000)
    return stream(np.cumsum(rng.exponential(1.0 / rate, size)), m, n, max_tokens=1000)
