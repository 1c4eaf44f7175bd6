"""What machine a profile was measured on: host, CPU, memory, accelerators, driver and library versions.

Written into the profile's metadata so that a reader can tell an H100 SXM from a PCIe card, or a run on
torch 2.1 from one on 2.5, years later. Every probe is best effort: a missing library or a locked-down
`/proc` leaves a field out instead of failing the calibration.
"""

from __future__ import annotations

import contextlib
import os
import platform
import socket
import subprocess
import sys
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from .meters.nvidia import nvml_text

LIBRARIES = ("hybridsim", "torch", "transformers", "numpy", "pandas", "nvidia-ml-py", "psutil")


def cpu_model() -> str:
    """Marketing name of the CPU, e.g. 'AMD EPYC 7742 64-Core Processor' or 'Apple M1 Pro'."""
    if sys.platform == "darwin":
        name = _run(["sysctl", "-n", "machdep.cpu.brand_string"])
        if name:
            return name
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        with contextlib.suppress(OSError):
            for line in cpuinfo.read_text(errors="replace").splitlines():
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def memory_gb() -> float | None:
    """Installed RAM in GiB."""
    try:
        import psutil

        return round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    with contextlib.suppress(OSError, ValueError, AttributeError):
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    return None


def physical_cores() -> int | None:
    try:
        import psutil

        return psutil.cpu_count(logical=False)
    except ImportError:
        return None


def nvidia_gpus() -> list[dict[str, Any]]:
    """Name, memory, power limit and driver of each NVIDIA GPU, via NVML; empty without pynvml or a GPU."""
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - NVMLError subclasses, library missing
        return []
    gpus: list[dict[str, Any]] = []
    try:
        driver = nvml_text(pynvml.nvmlSystemGetDriverVersion())
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            name = nvml_text(pynvml.nvmlDeviceGetName(handle))
            gpu: dict[str, Any] = {"index": index, "name": name, "driver": driver}
            with contextlib.suppress(Exception):
                gpu["memory_gb"] = round(pynvml.nvmlDeviceGetMemoryInfo(handle).total / 2**30, 1)
            with contextlib.suppress(Exception):
                gpu["power_limit_w"] = pynvml.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000
            with contextlib.suppress(Exception):
                gpu["uuid"] = nvml_text(pynvml.nvmlDeviceGetUUID(handle))
            gpus.append(gpu)
    except Exception:  # noqa: BLE001 - a partial answer is still worth keeping
        pass
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()
    return gpus


def device_name(device: str) -> str:
    """The accelerator that runs the model, as the profile's `device` field names it."""
    kind = device.split(":")[0]
    if kind == "cuda":
        try:
            import torch

            index = int(device.split(":")[1]) if ":" in device else torch.cuda.current_device()
            properties = torch.cuda.get_device_properties(index)
            return f"{properties.name} ({properties.total_memory / 2**30:.0f} GiB)"
        except Exception:  # noqa: BLE001 - no CUDA: fall through to the generic name
            return "CUDA GPU"
    if kind == "mps":
        return f"{cpu_model()} GPU (MPS)"
    return f"{cpu_model()} (CPU)"


def library_versions() -> dict[str, str]:
    versions: dict[str, str] = {"python": platform.python_version()}
    for name in LIBRARIES:
        with contextlib.suppress(importlib_metadata.PackageNotFoundError):
            versions[name] = importlib_metadata.version(name)
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        versions["torch_cuda"] = str(getattr(torch.version, "cuda", None))
    return versions


def collect(device: str) -> dict[str, Any]:
    """Everything above, as one JSON-ready dict for the profile's `metadata.extra`."""
    info: dict[str, Any] = {
        "host": socket.gethostname(),
        "os": f"{platform.system()} {platform.release()}",
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "physical_cores": physical_cores(),
        "memory_gb": memory_gb(),
        "device": device,
        "device_name": device_name(device),
        "libraries": library_versions(),
    }
    gpus = nvidia_gpus()
    if gpus:
        info["nvidia_gpus"] = gpus
        info["driver"] = gpus[0].get("driver")
    info["accelerators"] = [gpu["name"] for gpu in gpus] or ([info["device_name"]] if device != "cpu" else [])
    return info


def _run(command: list[str]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=5, check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
