"""No counter at all: energy estimated from the CPU time this process used, labelled as an estimate.

For machines with nothing to read (a VM, a container, CI), energy is modelled rather than measured:

    CPU J = CPU seconds of this process and its reaped children x (tdp_w / cores)
    GPU J = accelerator_w x elapsed seconds            (only when a constant accelerator power is given)

as if each busy core drew an equal share of the CPU's TDP; `cores` is the number of logical CPUs
(`os.cpu_count()`, SMT threads included) unless given. Every measurement says `estimated=True` and
gives the formula with its numbers in `method`, and profiles made with it are labelled estimated. It is
never chosen automatically: a user asks for it with `--meter estimated`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from hybridsim.core.errors import HybridsimError

from .common import EnergyMeter, Measurement

DEFAULT_WATTS_PER_CORE = 4.0
"""Used when no TDP is given: near the TDP per logical core of common server, desktop and laptop CPUs
(a 150 W 40-thread Xeon: 3.8 W; a 65 W 16-thread desktop: 4.1 W; a 225 W 128-thread EPYC: 1.8 W)."""


def process_cpu_seconds() -> float:
    """User + system CPU time of this process (all threads) and of its children that have been waited for."""
    children = os.times()
    return time.process_time() + children.children_user + children.children_system


class EstimatedMeter(EnergyMeter):
    """CPU time x (TDP / cores), plus an optional constant accelerator power: a model, not a measurement.

    Limits: assumes every busy logical CPU draws TDP/cores and idle ones nothing, so it ignores frequency
    scaling, SMT sharing, uncore, DRAM and idle power; counts only this process and children it has waited
    for (not running children, not other processes); the kernel accounts CPU time per scheduler tick on
    some systems (1-10 ms), so windows under ~50 ms are coarse; the accelerator term is a constant, blind
    to load, and absent (0 J) unless `accelerator_w` is given. Use it to run the pipeline end to end, not
    to compare hardware.
    """

    name = "estimated"
    scope = (
        "estimate: this process's CPU time x (TDP / cores), plus a constant accelerator "
        "power if given; nothing is measured"
    )
    estimated = True

    def __init__(
        self,
        tdp_w: float | None = None,
        *,
        cores: int | None = None,
        accelerator_w: float = 0.0,
        cpu_seconds: Callable[[], float] = process_cpu_seconds,
    ) -> None:
        self.cores = int(cores if cores is not None else (os.cpu_count() or 1))
        if self.cores < 1:
            raise HybridsimError(f"estimated: cores must be >= 1, got {self.cores}")
        self.tdp_from_default = tdp_w is None
        self.tdp_w = float(DEFAULT_WATTS_PER_CORE * self.cores if tdp_w is None else tdp_w)
        if self.tdp_w <= 0:
            raise HybridsimError(f"estimated: tdp_w must be > 0, got {tdp_w}")
        if accelerator_w < 0:
            raise HybridsimError(f"estimated: accelerator_w must be >= 0, got {accelerator_w}")
        self.accelerator_w = float(accelerator_w)
        self._cpu_seconds = cpu_seconds
        self._window: tuple[float, float] | None = None

    @property
    def watts_per_core(self) -> float:
        return self.tdp_w / self.cores

    @property
    def method(self) -> str:
        source = (
            f" (default {DEFAULT_WATTS_PER_CORE:g} W per core: no TDP given)" if self.tdp_from_default else ""
        )
        formula = f"estimated: CPU s x {self.tdp_w:g} W TDP{source} / {self.cores} cores"
        if self.accelerator_w:
            formula += f" + {self.accelerator_w:g} W accelerator x elapsed s"
        return formula

    def begin_window(self) -> None:
        if self._window is not None:
            raise HybridsimError("estimated: begin_window called while a window is open")
        self._window = (time.perf_counter(), self._cpu_seconds())

    def end_window(self) -> Measurement:
        if self._window is None:
            raise HybridsimError("estimated: end_window called without begin_window")
        (started, cpu_before), self._window = self._window, None
        cpu_s = self._cpu_seconds() - cpu_before
        elapsed = time.perf_counter() - started
        energy = {"cpu:process-estimate": cpu_s * self.watts_per_core}
        if self.accelerator_w:
            energy["gpu:constant-estimate"] = self.accelerator_w * elapsed
        return Measurement(
            elapsed_s=elapsed,
            energy_j=energy,
            method=self.method,
            estimated=True,
            samples=2,
            notes=(f"cpu_seconds={cpu_s:.6f}",),
        )

    def describe(self) -> dict[str, object]:
        return {
            "meter": self.name,
            "method": self.method,
            "tdp_w": self.tdp_w,
            "tdp_from_default": self.tdp_from_default,
            "cores": self.cores,
            "accelerator_w": self.accelerator_w,
        }

    def close(self) -> None:
        self._window = None
