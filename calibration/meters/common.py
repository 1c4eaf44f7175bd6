"""The one shape every energy source takes: open a window, close it, get joules per domain.

Modelled on Zeus's `begin_window` / `end_window`: a calibration trial opens a window just before a request
and closes it just after; the meter answers with energy per domain (`gpu:0`, `cpu:package-0`, `dram:0`,
`cpu:process-share`, ...), how it measured, and whether the figure is an estimate. A meter that cannot
read its counter raises `MeterUnavailable` with the reason: never a silent fallback to something else.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

from hybridsim.core.errors import HybridsimError


class MeterUnavailable(HybridsimError):
    """This machine cannot be measured this way (no device, no permission, no counter)."""


@dataclass(frozen=True)
class Measurement:
    """Energy over one window."""

    elapsed_s: float
    energy_j: dict[str, float]
    """Net energy per domain; names start with 'gpu', 'cpu' or 'dram'."""
    method: str
    """How it was measured, e.g. 'nvml-total-energy-counter' or 'rapl-sysfs (idle 37.5 W subtracted)'."""
    estimated: bool = False
    gross_energy_j: dict[str, float] | None = None
    """Energy before any idle baseline was subtracted, where one was."""
    samples: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)

    def domain_total(self, prefix: str) -> float:
        return float(sum(value for key, value in self.energy_j.items() if key.split(":")[0] == prefix))

    @property
    def gpu_energy_j(self) -> float:
        return self.domain_total("gpu")

    @property
    def cpu_energy_j(self) -> float:
        """CPU side of the node: CPU packages (or the process's share) plus DRAM where it is metered."""
        return self.domain_total("cpu") + self.domain_total("dram")

    @property
    def total_energy_j(self) -> float:
        return self.gpu_energy_j + self.cpu_energy_j


class EnergyMeter(ABC):
    """An energy source that can measure windows of time; one window at a time."""

    name: str = "abstract"
    scope: str = ""
    """In words: what the energy covers and what it leaves out (written into the profile's metadata)."""
    estimated: bool = False

    @abstractmethod
    def begin_window(self) -> None:
        """Start measuring."""

    @abstractmethod
    def end_window(self) -> Measurement:
        """Stop measuring and return the energy since `begin_window`."""

    def close(self) -> None:  # noqa: B027 - most meters hold nothing to release
        """Release devices, threads and subprocesses."""

    def __enter__(self) -> EnergyMeter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PeriodicSampler(threading.Thread):
    """Calls `sample()` every `interval_s` seconds, at a fixed rate, from a daemon thread until stopped.

    Meters use it where one reading at each end of a window is not enough: power polling (NVML without an
    energy counter), counter wraparound (RAPL), which cores a process ran on (uProf). An exception in
    `sample` ends the thread and is raised again by `stop()`, so no window silently loses readings.
    """

    def __init__(self, sample: Callable[[], object], interval_s: float, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self._sample, self._interval_s = sample, interval_s
        self._stop_event = threading.Event()
        self._error: BaseException | None = None

    def run(self) -> None:
        due = time.perf_counter()
        while True:
            due += self._interval_s  # a fixed rate: the time a sample takes does not slow the next one
            if self._stop_event.wait(max(0.0, due - time.perf_counter())):
                return
            try:
                self._sample()
            except BaseException as error:  # raised again by stop()
                self._error = error
                return

    def stop(self) -> None:
        """Stop sampling; raise what a sample raised, if anything did."""
        self._stop_event.set()
        self.join()
        if self._error is not None:
            raise self._error
