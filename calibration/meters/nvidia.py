"""NVIDIA GPUs through NVML: the driver's own energy counter, or its power reading polled and integrated.

Since Volta, the driver keeps a running total of the energy each board has used since the driver loaded
(`nvmlDeviceGetTotalEnergyConsumption`, in millijoules). A window's energy is the difference of two
readings, with nothing to sample in between. Older boards (and some virtualised ones) answer that call
with "not supported"; for those a background thread polls the board's power (`nvmlDeviceGetPowerUsage`,
milliwatts) at 20 Hz by default (at least 10 Hz is enforced) and integrates it with the trapezoid rule.
The method string of every measurement says which was used for which GPU.

`pynvml` (the `nvidia-ml-py` package) is imported when a meter is created, not when this module is,
so that machines without it can still import the package and be told why the meter is unavailable.
"""

from __future__ import annotations

import contextlib
import importlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from hybridsim.core.errors import HybridsimError

from .common import EnergyMeter, Measurement, MeterUnavailable, PeriodicSampler

COUNTER_METHOD = "nvml-total-energy-counter"
POLLING_METHOD = "nvml-power-polling"


def trapezoid_energy_j(times_s: Sequence[float], watts: Sequence[float]) -> float:
    """Energy under a sampled power curve (trapezoid rule); 0 for fewer than two samples."""
    return float(
        sum(
            (t1 - t0) * (p0 + p1) / 2
            for t0, t1, p0, p1 in zip(times_s, times_s[1:], watts, watts[1:], strict=False)
        )
    )


def nvml_text(value: object) -> str:
    """A string NVML returned: bytes from older pynvml releases, str from newer ones."""
    return value.decode() if isinstance(value, bytes) else str(value)


def import_pynvml() -> ModuleType:
    """The pynvml module, or `MeterUnavailable` if it is not installed."""
    try:
        return importlib.import_module("pynvml")
    except ImportError:
        raise MeterUnavailable(
            "nvidia: pynvml is not installed (pip install nvidia-ml-py, or the `calibrate` extra)"
        ) from None


@dataclass
class _Gpu:
    index: int
    handle: Any
    name: str
    uuid: str
    method: str
    domain: str = field(init=False)

    def __post_init__(self) -> None:
        self.domain = f"gpu:{self.index}"


class NvidiaMeter(EnergyMeter):
    """Energy of selected NVIDIA GPUs from NVML, per board.

    Limits: the counter has 1 mJ resolution but the driver refreshes it only every few tens of ms, so
    windows under ~0.1 s are coarse; polled power (pre-Volta boards) is a reading the driver itself
    averages (over up to 1 s on A100/H100-class boards), so it lags: on an H100 (driver 580) it read 8%
    low over a 5 s matmul and 64% high over the 3 s idle window after it, against the counter. It covers
    what the board's sensors cover (the whole board on data-centre parts, often less on consumer cards)
    and the whole physical GPU, so other processes and MIG slices sharing it are counted too; it leaves
    out the CPU, host memory, PCIe devices and PSU losses, and the GPUs not selected. Indices are NVML's
    (PCI bus order), which match CUDA's only with `CUDA_DEVICE_ORDER=PCI_BUS_ID` and no remapping through
    `CUDA_VISIBLE_DEVICES` (`hybridsim calibrate` maps its `--device` to NVML by the GPU's UUID).
    """

    name = "nvidia"
    scope = (
        "board energy of the selected NVIDIA GPUs as reported by the driver (whole board on data-centre "
        "parts); excludes CPU, host DRAM, other devices and PSU losses"
    )

    def __init__(
        self,
        gpu_indices: Sequence[int] | None = None,
        *,
        poll_interval_s: float = 0.05,
        force_polling: bool = False,
    ) -> None:
        if not 0 < poll_interval_s <= 0.1:
            raise HybridsimError(
                f"nvidia: poll_interval_s must be in (0, 0.1] (>= 10 Hz), got {poll_interval_s}"
            )
        self.poll_interval_s = poll_interval_s
        self._nvml = import_pynvml()
        self._nvml_error: type[BaseException] = self._nvml.NVMLError
        self._not_supported: type[BaseException] = self._nvml.NVMLError_NotSupported
        try:
            self._nvml.nvmlInit()
        except self._nvml_error as error:
            raise MeterUnavailable(
                f"nvidia: NVML did not start ({error}): no NVIDIA driver or GPU on this machine"
            ) from None
        self._initialised = True
        try:
            self.gpus = self._open_gpus(gpu_indices, force_polling)
            self.driver_version = nvml_text(self._nvml.nvmlSystemGetDriverVersion())
        except self._nvml_error as error:
            self.close()
            raise MeterUnavailable(f"nvidia: NVML error while opening the GPUs: {error}") from None
        except BaseException:
            self.close()
            raise
        self._window: (
            tuple[float, dict[str, float], PeriodicSampler | None, dict[str, list[tuple[float, float]]]]
            | None
        ) = None

    def _open_gpus(self, gpu_indices: Sequence[int] | None, force_polling: bool) -> list[_Gpu]:
        nvml = self._nvml
        count = int(nvml.nvmlDeviceGetCount())
        if count == 0:
            raise MeterUnavailable("nvidia: NVML started but sees no GPU")
        indices = list(range(count)) if gpu_indices is None else [int(index) for index in gpu_indices]
        if not indices or len(set(indices)) != len(indices):
            raise HybridsimError(f"nvidia: gpu_indices must be distinct and non-empty, got {list(indices)}")
        missing = [index for index in indices if not 0 <= index < count]
        if missing:
            raise MeterUnavailable(
                f"nvidia: GPU index {missing} does not exist; NVML sees {count} GPU(s): 0..{count - 1}"
            )
        gpus = []
        for index in indices:
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            name, uuid = nvml_text(nvml.nvmlDeviceGetName(handle)), nvml_text(nvml.nvmlDeviceGetUUID(handle))
            method = POLLING_METHOD if force_polling else self._probe_counter(handle)
            gpu = _Gpu(index=index, handle=handle, name=name, uuid=uuid, method=method)
            if method == POLLING_METHOD:
                try:
                    self._read_power_w(gpu)
                except self._nvml_error as error:
                    raise MeterUnavailable(
                        f"nvidia: GPU {index} ({name}) reports neither energy nor power ({error})"
                    ) from None
            gpus.append(gpu)
        return gpus

    def _probe_counter(self, handle: Any) -> str:
        try:
            self._nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        except self._not_supported:
            return POLLING_METHOD
        return COUNTER_METHOD

    def _read_counter_j(self, gpu: _Gpu) -> float:
        return self._nvml.nvmlDeviceGetTotalEnergyConsumption(gpu.handle) / 1e3

    def _read_power_w(self, gpu: _Gpu) -> float:
        return self._nvml.nvmlDeviceGetPowerUsage(gpu.handle) / 1e3

    @property
    def method(self) -> str:
        methods = {gpu.method for gpu in self.gpus}
        polling = f"{POLLING_METHOD} ({1 / self.poll_interval_s:.0f} Hz, trapezoid)"
        if methods == {COUNTER_METHOD}:
            return COUNTER_METHOD
        if methods == {POLLING_METHOD}:
            return polling
        return "; ".join(
            f"{gpu.domain} {COUNTER_METHOD if gpu.method == COUNTER_METHOD else polling}" for gpu in self.gpus
        )

    def begin_window(self) -> None:
        if self._window is not None:
            raise HybridsimError("nvidia: begin_window called while a window is open")
        if not self._initialised:
            self._nvml.nvmlInit()
            self._initialised = True
        polled = [gpu for gpu in self.gpus if gpu.method == POLLING_METHOD]
        # the window opens at the first power sample, so the polled span and the elapsed time are one
        # interval (starting the poller thread can take tens of ms on a loaded machine)
        started = time.perf_counter()
        trace: dict[str, list[tuple[float, float]]] = {
            gpu.domain: [(started, self._read_power_w(gpu))] for gpu in polled
        }
        counters = {
            gpu.domain: self._read_counter_j(gpu) for gpu in self.gpus if gpu.method == COUNTER_METHOD
        }
        poller = None
        if polled:

            def poll() -> None:
                for gpu in polled:
                    trace[gpu.domain].append((time.perf_counter(), self._read_power_w(gpu)))

            poller = PeriodicSampler(poll, self.poll_interval_s, name="nvml-power-poller")
            poller.start()
        self._window = (started, counters, poller, trace)

    def end_window(self) -> Measurement:
        if self._window is None:
            raise HybridsimError("nvidia: end_window called without begin_window")
        started, counters, poller, trace = self._window
        self._window = None
        if poller is not None:
            poller.stop()
        energy = {
            gpu.domain: self._read_counter_j(gpu) - counters[gpu.domain]
            for gpu in self.gpus
            if gpu.method == COUNTER_METHOD
        }
        ended = time.perf_counter()
        for gpu in self.gpus:
            if gpu.method == POLLING_METHOD:
                trace[gpu.domain].append((ended, self._read_power_w(gpu)))
                times, watts = zip(*trace[gpu.domain], strict=True)
                energy[gpu.domain] = trapezoid_energy_j(times, watts)
        samples = 2 * len(counters) + sum(len(points) for points in trace.values())
        ordered = {gpu.domain: energy[gpu.domain] for gpu in self.gpus}
        return Measurement(elapsed_s=ended - started, energy_j=ordered, method=self.method, samples=samples)

    def describe(self) -> dict[str, object]:
        """Driver and devices, for a profile's metadata."""
        return {
            "meter": self.name,
            "method": self.method,
            "driver_version": self.driver_version,
            "gpus": [
                {"index": gpu.index, "name": gpu.name, "uuid": gpu.uuid, "method": gpu.method}
                for gpu in self.gpus
            ],
        }

    def close(self) -> None:
        window, self._window = getattr(self, "_window", None), None
        if window is not None and window[2] is not None:
            window[2].stop()
        if self._initialised:
            self._initialised = False
            with contextlib.suppress(self._nvml_error):
                self._nvml.nvmlShutdown()
