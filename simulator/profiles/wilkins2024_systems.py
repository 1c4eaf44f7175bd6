"""The paper's four machines: what each is, what its energy numbers cover, and its idle power.

The four systems of Wilkins et al. measured energy with different meters over different parts of the
machine (a process's share of an M1's CPU, one A100 plus a constant CPU power, GPUs plus RAPL packages
minus an assumed idle). Each built-in profile says which in words (`energy_scope`), and carries an idle
power within that same scope, estimated from the start-up windows because the paper did not measure it
(`idle_power`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

PALMETTO_IDLE_W = {
    ("Palmetto Intel+A100", "input"): "37.5 W per package",
    ("Palmetto Intel+A100", "output"): "33.5 W per package",
    ("Palmetto Intel+V100", "input"): "37.78 W and 38.71 W for packages 0 and 1",
    ("Palmetto Intel+V100", "output", "Falcon (7B)"): "33.5 W per package",
    ("Palmetto Intel+V100", "output", "Llama-2 (7B)"): "37.5 W per package",
    ("Palmetto Intel+V100", "output", "Mistral (7B)"): "39.5 W per package",
}
"""The idle power the upstream scripts subtracted from RAPL package energy (reference README §3)."""


@dataclass(frozen=True)
class System:
    key: str
    device: str
    dtype: str
    meter: str


SYSTEMS = {
    "M1-Pro": System(
        "m1-pro",
        "Apple M1 Pro (10-core CPU, 14-core GPU, 32 GB unified memory), MacBook Pro",
        "float16 (MPS)",
        "powermetrics",
    ),
    "Swing AMD+A100": System(
        "swing-a100",
        "NVIDIA A100 40GB (1 GPU used), 2x AMD EPYC 7742 (Argonne Swing)",
        "bfloat16 (CUDA)",
        "nvml+uprof",
    ),
    "Palmetto Intel+A100": System(
        "palmetto-a100",
        "NVIDIA A100 40GB, 2x Intel Xeon 6148G (Clemson Palmetto)",
        "bfloat16 (CUDA)",
        "nvml+rapl",
    ),
    "Palmetto Intel+V100": System(
        "palmetto-v100",
        "NVIDIA V100 16GB, 2x Intel Xeon 6148G (Clemson Palmetto)",
        "bfloat16 (CUDA)",
        "nvml+rapl",
    ),
}


def energy_scope(system: str, model: str, cpu_w: dict[str, float]) -> str:
    if system == "M1-Pro":
        return (
            "Whole-GPU energy (powermetrics GPU power x 200 ms samples) plus this process's share of CPU "
            "energy (CPU power x python energy impact / all tasks). Idle not subtracted; other "
            "processes, display, SSD and power supply not included."
        )
    if system == "Swing AMD+A100":
        return (
            "GPU energy of the one A100 used (NVML counter via pyJoules) plus a constant CPU power "
            f"(AMD uProf per-core average over the whole job: {cpu_w['input']:.2f} W in the input sweep, "
            f"{cpu_w['output']:.2f} W in the output sweep) x runtime, so the CPU is not really measured "
            "per request. Idle not subtracted; DRAM, other host parts and power supply not included."
        )
    idle = (
        PALMETTO_IDLE_W[(system, "input")],
        PALMETTO_IDLE_W.get((system, "output"), PALMETTO_IDLE_W.get((system, "output", model))),
    )
    return (
        "GPU energy (NVML counter via pyJoules) plus RAPL energy of CPU packages 0 and 1 minus an "
        f"assumed idle power x runtime per package ({idle[0]} in the input sweep, {idle[1]} in the "
        "output sweep), so CPU energy is above an assumed idle and can go negative. DRAM, other host "
        "parts and power supply not included."
    )


def idle_power(system: str, startup: pd.DataFrame, cpu_w: dict[str, float]) -> tuple[float, str]:
    """Idle power within the profile's scope: not measured upstream, so estimated from start-up windows."""
    rows = startup[startup["system"] == system]
    if system == "M1-Pro":
        gpu = float(rows.loc[rows["phase"] == "load model", "gpu_power_w"].median())
        return _round_w(gpu), (
            f"Not measured by the paper. GPU: median powermetrics GPU power over the {len(rows)} 'load "
            f"model' windows ({gpu:.3f} W; the GPU does no inference there). CPU: the process's share of CPU "
            "power at idle is assumed 0 W. Whole-machine idle of an M1 Pro (a few W) is outside this scope."
        )
    tokenizer = rows[rows["phase"] == "tokenizer"]
    gpu = float(tokenizer["gpu_power_w"].median())
    gpu_text = (
        f"Not measured by the paper. GPU: median NVML power over the {len(tokenizer)} tokenizer-load "
        f"windows on this system ({gpu:.1f} W; 0.2-0.6 s windows before the model was loaded, "
        "in line with the ~25-60 W an idle datacenter A100 or V100 draws)."
    )
    if system == "Swing AMD+A100":
        cpu = float(np.mean(list(cpu_w.values())))
        return _round_w(gpu + cpu), gpu_text + (
            f" CPU: the constant uProf power this scope adds ({cpu:.2f} W, mean of the two sweeps' values)."
        )
    return _round_w(gpu), gpu_text + (
        " CPU: 0 W, because the scope subtracts an assumed idle power from RAPL by construction, so an idle "
        "host contributes nothing within it if that assumption holds."
    )


def _round_w(value: float) -> float:
    return float(f"{value:.3g}")
