"""`hybridsim calibrate`'s meter: which options each meter reads, choosing it, and what it subtracted.

The meters themselves live in `meters/`; this module turns command-line options into one of them and
refuses options the chosen meter would silently ignore.
"""

from __future__ import annotations

import os
import time
import warnings
from typing import Any

import click

from hybridsim.core.errors import HybridsimError

METER_OPTIONS: dict[str, tuple[str, ...]] = {
    "--tdp-w": ("estimated",),
    "--accelerator-w": ("estimated",),
    "--idle-s": ("rapl", "auto", "nvidia", "powermetrics"),
    "--uprof-csv": ("uprof",),
}
"""Options that only some meters read: given with another meter they would be ignored, so they are refused."""


def check_meter_options(meter_name: str, options: dict[str, Any]) -> None:
    """Refuse an option the chosen meter would ignore, and an idle measurement of negative length."""
    from .meters.auto import METER_NAMES

    idle_s = options.get("--idle-s")
    if idle_s is not None and idle_s < 0:
        raise HybridsimError(f"--idle-s: must be >= 0, got {idle_s:g}")
    if meter_name not in (*METER_NAMES, "auto"):
        return  # select_meter names the unknown meter
    for option, value in options.items():
        meters = METER_OPTIONS[option]
        if value is not None and meter_name not in meters:
            raise HybridsimError(
                f"{option}: only --meter {' or '.join(meters)} reads it, not --meter {meter_name}"
            )


def choose_meter(name: str, **options: Any) -> Any:
    """The meter `name` from `meters.auto.select_meter`, given the options that were set (not None)."""
    from .meters.auto import select_meter

    given = {key: value for key, value in options.items() if value is not None}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        meter = select_meter(name, **given)
    for warning in caught:  # e.g. 'auto' measuring the GPU without the CPU: say it plainly, once
        click.echo(f"note: {warning.message}")
    return meter


def nvml_indices(device: str) -> list[int] | None:
    """NVML's index of the GPU that torch calls `device`, so the meter reads the GPU that runs the model.

    NVML numbers GPUs in PCI order and ignores CUDA_VISIBLE_DEVICES; CUDA numbers them fastest first and
    honours it. The GPU's UUID is the same in both; where it cannot be read, CUDA_VISIBLE_DEVICES is
    applied to the index as a fallback.
    """
    if not device.startswith("cuda"):
        return None
    index = int(device.split(":")[1]) if ":" in device else 0
    try:
        import pynvml
        import torch

        from .meters.nvidia import nvml_text

        uuid = str(torch.cuda.get_device_properties(index).uuid).removeprefix("GPU-")
        pynvml.nvmlInit()
        try:
            for nvml_index in range(pynvml.nvmlDeviceGetCount()):
                nvml_uuid = nvml_text(pynvml.nvmlDeviceGetUUID(pynvml.nvmlDeviceGetHandleByIndex(nvml_index)))
                if nvml_uuid.removeprefix("GPU-") == uuid:
                    return [nvml_index]
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # noqa: BLE001 - no pynvml, no CUDA, an old torch without .uuid: use the fallback
        pass
    visible = [part.strip() for part in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if part.strip()]
    if visible and all(part.isdigit() for part in visible) and index < len(visible):
        return [int(visible[index])]
    return [index]


def measure_idle_w(meter: Any, seconds: float) -> tuple[float | None, str]:
    """Power of the idle machine within the meter's scope (gross: nothing subtracted), over an idle window of
    `seconds` read by the meter itself (`calibrate`, and `calibrate --serving`)."""
    if seconds <= 0:
        return None, "not measured (--idle-window-s 0)"
    meter.begin_window()
    time.sleep(seconds)
    measurement = meter.end_window()
    energy = measurement.gross_energy_j or measurement.energy_j
    label = "ESTIMATED by the meter's model" if measurement.estimated else "metered"
    return (
        float(sum(energy.values())) / max(measurement.elapsed_s, 1e-9),
        f"{label}: an idle window of {seconds:g} s before the sweep ({measurement.method})",
    )


IDLE_WINDOW_S = 5.0
"""Length of the idle window `calibrate` measures before the sweep when --idle-s does not say (s)."""
ESTIMATED_IDLE = (
    "estimated meter: it counts only this process's CPU time (plus --accelerator-w while a trial runs), so "
    "an idle node draws 0 W by this estimate; set idle_power_w in a scenario for a real figure"
)


def idle_power(meter: Any, idle_s: float | None = None) -> tuple[float | None, str]:
    """What one node of this system draws while it serves nothing (W), and how that was found.

    The simulator charges idle power x idle time per node, so a profile needs it. Measured where the meter
    can measure an idle machine: RAPL's baseline, where --idle-s made the meter subtract one from every
    trial (the paper's eq. 7); otherwise an idle window of `idle_s` seconds (default IDLE_WINDOW_S; 0 skips
    it) read with the meter itself, with the model loaded and warm, before the sweep. The estimated meter
    sees no idle machine (it counts this process's CPU time), so its profiles say 0 W and why. uProf's meter
    reads a log written while trials run: no window, no idle figure (set one in the scenario).
    """
    if meter.name == "estimated":
        return 0.0, ESTIMATED_IDLE
    parts = [meter, *getattr(meter, "meters", [])]
    subtracted = [float(sum(part.idle_w.values())) for part in parts if getattr(part, "idle_w", None)]
    baseline = sum(subtracted)
    baseline_note = (
        f"RAPL baseline {baseline:.3g} W measured before the run and subtracted from every trial (eq. 7)"
    )
    concrete = [part for part in parts if not getattr(part, "meters", None)]
    if all(getattr(part, "idle_w", None) for part in concrete):
        return baseline, baseline_note  # every part subtracts its idle: nothing left to measure
    if any(part.name == "uprof" for part in concrete):
        return (
            (baseline, baseline_note)
            if subtracted
            else (None, "not measured (uProf reads a log of the trials)")
        )
    if idle_s == 0:  # asked for no idle measurement (like --idle-window-s 0), not for the default window
        return None, "not measured (--idle-s 0)"
    seconds = IDLE_WINDOW_S if idle_s is None else idle_s
    watts, source = measure_idle_w(meter, seconds)  # gross: any RAPL baseline is inside it
    note = f"; the trials had the {baseline_note}" if subtracted else "; not subtracted from the trials"
    return watts, f"{source}, model loaded{note}"
