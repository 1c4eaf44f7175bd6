"""Stand-ins for hardware: a powercap tree on disk and an in-memory pynvml module."""

from __future__ import annotations

import types
from dataclasses import dataclass, field
from pathlib import Path

DATA = Path(__file__).parent / "data"


def write_zone(root: Path, zone: str, name: str, energy_uj: int, max_uj: int) -> Path:
    """One powercap zone directory as the kernel lays it out under /sys/class/powercap."""
    path = root / zone
    path.mkdir(parents=True)
    (path / "name").write_text(f"{name}\n")
    (path / "energy_uj").write_text(f"{energy_uj}\n")
    (path / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return path


def powercap_tree(root: Path, *, max_uj: int = 262_143_328_850) -> Path:
    """A two-socket Intel server: packages, their core/dram sub-zones, psys, and the mmio duplicate."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "intel-rapl").mkdir()  # the control type directory, not a zone
    write_zone(root, "intel-rapl:0", "package-0", 1_000_000, max_uj)
    write_zone(root, "intel-rapl:0:0", "core", 500_000, max_uj)
    write_zone(root, "intel-rapl:0:1", "dram", 2_000_000, 65_532_610_987)
    write_zone(root, "intel-rapl:1", "package-1", 3_000_000, max_uj)
    write_zone(root, "intel-rapl:1:0", "dram", 4_000_000, 65_532_610_987)
    write_zone(root, "intel-rapl:2", "psys", 9_000_000, max_uj)
    write_zone(root, "intel-rapl-mmio:0", "package-0", 1_000_000, max_uj)
    return root


def set_energy(root: Path, zone: str, energy_uj: int) -> None:
    # Replaced whole, as the kernel's file is: the meter's sampler thread may read it at any moment, and a
    # truncate-then-write would let it read an empty file.
    staged = root / zone / "energy_uj.new"
    staged.write_text(f"{energy_uj}\n")
    staged.replace(root / zone / "energy_uj")


def get_energy(root: Path, zone: str) -> int:
    return int((root / zone / "energy_uj").read_text())


@dataclass
class FakeGpu:
    name: str = "NVIDIA H100 80GB HBM3"
    energy_mj: int | None = 1_000_000
    """None: the board does not support the energy counter (pre-Volta)."""
    power_mw: int = 250_000


@dataclass
class FakeNvml:
    """State behind the fake module: GPUs, and whether the driver is there at all."""

    gpus: list[FakeGpu] = field(default_factory=lambda: [FakeGpu()])
    driver_loaded: bool = True
    shutdowns: int = 0

    def module(self) -> types.ModuleType:
        state = self
        nvml = types.ModuleType("pynvml")

        class NVMLError(Exception):
            pass

        class NVMLError_NotSupported(NVMLError):
            pass

        class NVMLError_DriverNotLoaded(NVMLError):
            pass

        def init() -> None:
            if not state.driver_loaded:
                raise NVMLError_DriverNotLoaded("Driver Not Loaded")

        def energy(handle: int) -> int:
            gpu = state.gpus[handle]
            if gpu.energy_mj is None:
                raise NVMLError_NotSupported("Not Supported")
            return gpu.energy_mj

        def shutdown() -> None:
            state.shutdowns += 1

        nvml.NVMLError = NVMLError
        nvml.NVMLError_NotSupported = NVMLError_NotSupported
        nvml.NVMLError_DriverNotLoaded = NVMLError_DriverNotLoaded
        nvml.nvmlInit = init
        nvml.nvmlShutdown = shutdown
        nvml.nvmlDeviceGetCount = lambda: len(state.gpus)
        nvml.nvmlDeviceGetHandleByIndex = lambda index: index
        nvml.nvmlDeviceGetName = lambda handle: state.gpus[handle].name
        nvml.nvmlDeviceGetUUID = lambda handle: f"GPU-0000000{handle}-fake"
        nvml.nvmlDeviceGetTotalEnergyConsumption = energy
        nvml.nvmlDeviceGetPowerUsage = lambda handle: state.gpus[handle].power_mw
        nvml.nvmlSystemGetDriverVersion = lambda: "550.54.15"
        return nvml
