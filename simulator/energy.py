"""Where a request's joules come from: one path, from the profile to the operator's bill.

The electricity bill of a day of inference has two lines. The *active* line: each request cost what the
profile of the node that served it says a request of its prompt and answer lengths costs (CPU and GPU
energy within the profile's energy scope, measured one request at a time); under a power cap the GPU
draws less power for longer (Samsi et al., "From words to watts", 2023: an A100 capped from 250 W to
175 W ran inference 6.7% slower); and a request served together with others in a batch pays its share
of what the batch cost. The *idle* line: every node draws its idle power whenever it serves nothing.

This module is that path, written once, as pure functions:

* `request_energy`: the active joules (CPU and GPU) of requests, from their tokens, the pool's cost model,
  its power cap and the batch each was served in. The engine prices every served request with it after
  the run; before the run the pools use it (with no batch) to know what each request would cost alone.
* `batch_share`: how much a batch scales its members' energies (the padded-batch assumption of
  `cluster/batching.py`); the pool calls it when it forms a batch and records the share per request.
* `idle_energy`: idle power x idle time of each node, up to the end of the run.
* `iteration_energy`: the joules of forward passes of a continuously batching engine (a prefill pass or a
  decode step over a running batch, priced from a profile's serving tables), under the power cap.

Everything else only moves these numbers: the per-request table (`metrics/records.py`) holds them and
the summary (`metrics/summary.py`) adds them up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from hybridsim.core.profile_model import CostModel, PassCost


@dataclass(frozen=True)
class PowerCap:
    """A per-node power limit, as the slowdown and the power reduction it causes."""

    runtime_factor: float = 1.0
    """Runtime under the cap / runtime uncapped (Samsi et al.: 1.067 at 175 W, 1.195 at 150 W of 250 W)."""
    power_factor: float = 1.0
    """Accelerator power under the cap / power uncapped (e.g. 175/250 = 0.7 when the GPU runs at the cap)."""


NO_CAP = PowerCap()


@dataclass(frozen=True)
class RequestEnergy:
    """Active energy of a set of requests (float64 columns, one entry per request, in J)."""

    cpu_j: np.ndarray
    """Energy the profile attributes to the CPU (its whole package on an SoC without a GPU share)."""
    gpu_j: np.ndarray
    """Energy the profile attributes to the accelerator."""
    energy_j: np.ndarray
    """CPU + GPU: the request's active energy (equal to their sum up to rounding after a batch share)."""


def request_energy(
    model: CostModel,
    input_tokens: ArrayLike,
    output_tokens: ArrayLike,
    cap: PowerCap = NO_CAP,
    batch_share: ArrayLike | None = None,
) -> RequestEnergy:
    """The active joules of requests of `input_tokens` x `output_tokens` served on the system behind `model`.

    Vectorised. The profile's cost model gives each request's CPU and GPU energy served alone and
    uncapped; a power cap stretches the runtime (CPU energy x runtime_factor) and lowers the accelerator's
    power for that longer time (GPU energy x runtime_factor x power_factor); a batch scales each member's
    energy by its share (`batch_share` below, one per request; None: every request served alone).
    """
    m = np.asarray(input_tokens, dtype=np.float64)
    n = np.asarray(output_tokens, dtype=np.float64)
    cpu = np.asarray(model.cpu_energy_j(m, n), dtype=np.float64) * cap.runtime_factor
    gpu = np.asarray(model.gpu_energy_j(m, n), dtype=np.float64) * (cap.runtime_factor * cap.power_factor)
    total = cpu + gpu
    if batch_share is None:
        return RequestEnergy(cpu, gpu, total)
    share = np.asarray(batch_share, dtype=np.float64)
    return RequestEnergy(cpu * share, gpu * share, total * share)


def batch_share(alone_energies: Sequence[float], energy_growth: float) -> float:
    """What a batch does to its members' energies: batch energy / the members' energies served alone.

    A batch is padded to its largest member, so it costs what that member costs alone, times
    (1 + energy_growth) per extra member (`cluster/batching.py` explains the assumption); every member
    pays in proportion to what it would have cost alone, so the members' shares add up to the batch.
    """
    batch = max(alone_energies) * (1.0 + energy_growth * (len(alone_energies) - 1))
    alone = sum(alone_energies)
    return batch / alone if alone else 1.0


def idle_energy(idle_power_w: np.ndarray, busy_s: np.ndarray, horizon_s: float) -> np.ndarray:
    """Idle energy of each node (J): its idle power for the time between t = 0 and the
    horizon it did not serve.
    """
    return idle_power_w * np.maximum(horizon_s - busy_s, 0.0)


# -- one iteration of continuous batching --------------------------------------------------------------


def iteration_energy(passes: PassCost, cap: PowerCap = NO_CAP) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(time s, CPU J, GPU J) of forward passes of a batching engine, under the pool's power cap (vectorised).

    A batching engine (vLLM, TGI) runs iterations, not requests: a prefill pass over newly admitted prompts,
    then decode steps that each add one token to every running request. The serving tables price one pass
    uncapped (`ServingCostModel.prefill` / `.decode` -> `PassCost`); the cap acts as on a request (CPU energy
    x runtime_factor, GPU energy x runtime_factor x power_factor). `profiles/iteration_pricing.py` calls
    this for runs of iterations, and `cluster/continuous.py` shares each pass's joules out to the requests
    in it (by tokens processed), so that the shares add up to what the passes cost.
    """
    time = np.asarray(passes.time_s, dtype=np.float64) * cap.runtime_factor
    cpu = np.asarray(passes.cpu_energy_j, dtype=np.float64) * cap.runtime_factor
    gpu = np.asarray(passes.gpu_energy_j, dtype=np.float64) * (cap.runtime_factor * cap.power_factor)
    return time, cpu, gpu
