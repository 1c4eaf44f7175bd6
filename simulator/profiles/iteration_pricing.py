"""What the iterations of a batching engine cost: pure functions of (batch, context), beside the serving tables.

A batching engine (vLLM, TGI) spends its day in forward passes. A *prefill* pass reads newly admitted
prompts and writes their KV cache; a *decode* iteration generates one token for every running request and
reads the whole batch's KV cache. The serving tables (`ServingCostModel`) price one pass. Between two changes
of the running batch (an admission, a finish, a preemption) the decode iterations differ only in how much
KV they read: it grows by the batch size every step. So a whole run of them is priced at once, vectorised
over the steps, and the event loop schedules one event at its end instead of one per token.

A power cap acts on every pass as on a request: the joules go through `energy.iteration_energy`, the one
path of energy in the simulator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from hybridsim.core.profile_model import ServingCostModel

from ..energy import NO_CAP, PowerCap, iteration_energy


@dataclass(frozen=True)
class DecodeRun:
    """`steps` decode iterations of one unchanged batch, cumulated (index k: after k + 1 iterations)."""

    end_s: np.ndarray
    """Time from the run's start to the end of each iteration (s), increasing."""
    energy_j: np.ndarray
    """Cumulative energy (CPU + GPU) of the iterations so far (J)."""
    cpu_energy_j: np.ndarray
    """Cumulative CPU share of it (J)."""
    step_s: np.ndarray
    """Duration of each iteration (s): the time between two tokens of every request in the batch."""


def decode_run(
    model: ServingCostModel, batch: int, context_tokens: int, steps: int, cap: PowerCap = NO_CAP
) -> DecodeRun:
    """Price `steps` decode iterations of `batch` requests holding `context_tokens` KV tokens at the first.

    Iteration k reads `context_tokens + k * batch` tokens (every request's KV grows by one token a step).
    """
    context = context_tokens + batch * np.arange(steps, dtype=np.float64)
    step, cpu, gpu = iteration_energy(model.decode(np.full(steps, float(batch)), context), cap)
    cpu_cum = np.cumsum(cpu)
    return DecodeRun(np.cumsum(step), cpu_cum + np.cumsum(gpu), cpu_cum, step)


def prefill_pass(
    model: ServingCostModel, batch: int, prompt_tokens: int, cap: PowerCap = NO_CAP
) -> tuple[float, float, float]:
    """(time s, energy J, CPU energy J) of one prefill pass over `batch` prompts of `prompt_tokens` in all."""
    time, cpu, gpu = iteration_energy(
        model.prefill(np.array([float(batch)]), np.array([float(prompt_tokens)])), cap
    )
    return float(time[0]), float(cpu[0] + gpu[0]), float(cpu[0])


def mixed_pass(
    model: ServingCostModel,
    prefill_batch: int,
    prefill_tokens: int,
    decode_batch: int,
    context_tokens: int,
    cap: PowerCap = NO_CAP,
) -> tuple[float, float, float]:
    """(time s, energy J, CPU J) of a chunked-prefill iteration: prefill chunks and decodes in one pass.

    The tables measure prefill and decode passes apart, so a mixed pass is priced as their sum: an upper
    bound, since a real mixed pass reads the weights once where the sum counts them twice.
    """
    time, energy, cpu = (0.0, 0.0, 0.0)
    if prefill_batch:
        time, energy, cpu = prefill_pass(model, prefill_batch, prefill_tokens, cap)
    if decode_batch:
        run = decode_run(model, decode_batch, context_tokens, 1, cap)
        time += float(run.end_s[0])
        energy += float(run.energy_j[0])
        cpu += float(run.cpu_energy_j[0])
    return time, energy, cpu


def marginal_estimate(
    model: ServingCostModel,
    batch: int,
    context_tokens: int,
    input_tokens: int,
    output_tokens: float,
    cap: PowerCap = NO_CAP,
) -> tuple[float, float]:
    """(energy J, latency s) a request adds when it joins a running batch of `batch` holding `context_tokens`.

    Its prefill alone, then n - 1 iterations of the batch one larger, each costing the difference between
    the bigger and the current batch's iteration (both at the mid-point context). A batching GPU's marginal
    cost is far below its batch-1 cost: the weights are read once per iteration whoever is in it.
    """
    steps = max(output_tokens - 1.0, 0.0)
    pre_time, pre_energy, _ = prefill_pass(model, 1, input_tokens, cap)
    grown = context_tokens + input_tokens + 0.5 * steps * (batch + 1)
    now = context_tokens + 0.5 * steps * max(batch, 1)
    cost = model.decode(np.array([float(batch + 1), float(max(batch, 1))]), np.array([grown, now]))
    energy = (
        cost.cpu_energy_j * cap.runtime_factor + cost.gpu_energy_j * cap.runtime_factor * cap.power_factor
    )
    extra = float(energy[0] - (energy[1] if batch else 0.0))
    return pre_energy + steps * max(extra, 0.0), pre_time + steps * float(cost.time_s[0]) * cap.runtime_factor


class ServedAlone:
    """A serving table seen as a request-level cost model (`CostModel`): each request alone, batch 1.

    What a router predicts for a batching pool when it does not look at the batch, and the no-queue
    reference the summary compares runs against. Uncapped: `cluster.price_requests` applies the cap.
    """

    def __init__(self, model: ServingCostModel) -> None:
        self.model = model
        self.name = f"{model.name} (served alone)"
        self.input_range = (0.0, float("inf"))
        """Unbounded here: the serving model itself follows the scenario's out_of_range."""
        self.output_range = (0.0, float("inf"))

    def _costs(self, input_tokens: ArrayLike, output_tokens: ArrayLike) -> tuple[np.ndarray, ...]:
        m = np.asarray(input_tokens, dtype=np.float64)
        steps = np.maximum(np.asarray(output_tokens, dtype=np.float64) - 1.0, 0.0)
        ones = np.ones_like(m)
        pre = self.model.prefill(ones, m)
        first, middle, last = (
            self.model.decode(ones, m + at) for at in (1.0, 1.0 + 0.5 * (steps - 1), steps)
        )

        def total(column: str) -> np.ndarray:
            a, b, c = (np.asarray(getattr(cost, column), dtype=np.float64) for cost in (first, middle, last))
            return np.asarray(getattr(pre, column), dtype=np.float64) + steps * (a + 4 * b + c) / 6.0

        return total("time_s"), total("cpu_energy_j"), total("gpu_energy_j")

    def runtime_s(self, input_tokens: ArrayLike, output_tokens: ArrayLike) -> np.ndarray:
        return self._costs(input_tokens, output_tokens)[0]

    def cpu_energy_j(self, input_tokens: ArrayLike, output_tokens: ArrayLike) -> np.ndarray:
        return self._costs(input_tokens, output_tokens)[1]

    def gpu_energy_j(self, input_tokens: ArrayLike, output_tokens: ArrayLike) -> np.ndarray:
        return self._costs(input_tokens, output_tokens)[2]

    def energy_j(self, input_tokens: ArrayLike, output_tokens: ArrayLike) -> np.ndarray:
        _, cpu, gpu = self._costs(input_tokens, output_tokens)
        return cpu + gpu
