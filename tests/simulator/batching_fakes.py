"""A serving table a test can add up by hand: pass costs linear in batch and tokens, energy = power x time."""

from __future__ import annotations

import numpy as np
from hybridsim.simulator.cluster import PoolSetup
from hybridsim.simulator.cluster.continuous_node import ContinuousSetup, ServingLimits
from hybridsim.simulator.engine import PoolConfig
from hybridsim.simulator.profiles.iteration_pricing import ServedAlone
from numpy.typing import ArrayLike

from hybridsim.core.profile_model import PassCost


class LinearServing:
    """prefill: p0 + pb*batch + pt*prompt tokens (s); decode: d0 + db*batch + dc*context (s); power in W."""

    def __init__(
        self,
        prefill: tuple[float, float, float] = (0.02, 0.001, 2e-5),
        decode: tuple[float, float, float] = (0.015, 2e-4, 1e-7),
        power_w: float = 400.0,
        cpu_share: float = 0.2,
        kv_capacity_tokens: int = 200_000,
    ) -> None:
        self.name = "linear-serving"
        self.p, self.d, self.power_w, self.cpu_share = prefill, decode, power_w, cpu_share
        self.kv_capacity_tokens = kv_capacity_tokens
        self.batch_range = (1, 512)

    def _cost(self, time: np.ndarray) -> PassCost:
        energy = self.power_w * time
        return PassCost(time, self.cpu_share * energy, (1.0 - self.cpu_share) * energy)

    def prefill(self, batch_size: ArrayLike, prompt_tokens: ArrayLike) -> PassCost:
        b, t = np.asarray(batch_size, np.float64), np.asarray(prompt_tokens, np.float64)
        return self._cost(self.p[0] + self.p[1] * b + self.p[2] * t)

    def decode(self, batch_size: ArrayLike, context_tokens: ArrayLike) -> PassCost:
        b, c = np.asarray(batch_size, np.float64), np.asarray(context_tokens, np.float64)
        return self._cost(self.d[0] + self.d[1] * b + self.d[2] * c)

    # closed forms a test compares against
    def alone_runtime_s(self, m: np.ndarray, n: np.ndarray) -> np.ndarray:
        """Batch 1: prefill(1, m) + sum over k = 1..n-1 of decode(1, m + k)."""
        m, n = np.asarray(m, np.float64), np.asarray(n, np.float64)
        steps = n - 1
        decode = steps * (self.d[0] + self.d[1]) + self.d[2] * (steps * m + steps * (steps + 1) / 2)
        return self.p[0] + self.p[1] + self.p[2] * m + decode


class AloneCostModel:
    """The request-level profile equivalent to a `LinearServing` at batch 1 (exact sums, no Simpson)."""

    def __init__(self, serving: LinearServing) -> None:
        self.serving, self.name = serving, "alone"
        self.input_range, self.output_range = (1.0, 1e9), (1.0, 1e9)

    def runtime_s(self, m: ArrayLike, n: ArrayLike) -> np.ndarray:
        return self.serving.alone_runtime_s(np.asarray(m), np.asarray(n))

    def energy_j(self, m: ArrayLike, n: ArrayLike) -> np.ndarray:
        return self.serving.power_w * self.runtime_s(m, n)

    def cpu_energy_j(self, m: ArrayLike, n: ArrayLike) -> np.ndarray:
        return self.serving.cpu_share * self.energy_j(m, n)

    def gpu_energy_j(self, m: ArrayLike, n: ArrayLike) -> np.ndarray:
        return (1.0 - self.serving.cpu_share) * self.energy_j(m, n)


def continuous_pool(
    name: str,
    count: int,
    serving: LinearServing | None = None,
    idle_w: float = 60.0,
    max_num_seqs: int = 64,
    max_num_batched_tokens: int = 8192,
    chunked_prefill: bool = False,
    kv_capacity_tokens: int = 0,
    tabulate: bool = False,
) -> PoolConfig:
    serving = serving or LinearServing()
    limits = ServingLimits(max_num_seqs, max_num_batched_tokens, chunked_prefill, kv_capacity_tokens)
    setup = PoolSetup(
        name, count, idle_w, "fifo", serving=ContinuousSetup(serving, limits, tabulate=tabulate)
    )
    return PoolConfig(setup, ServedAlone(serving), profile=serving.name)
