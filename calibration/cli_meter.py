"""`hybridsim calibrate`'s meter: which options each meter reads, choosing it, and what it subtracted.

The meters themselves live in `meters/`; this module turns command-line options into one of them and
refuses options the chosen meter would silently ignore.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import click

from hybridsim.core.errors import HybridsimError

METER_OPTIONS: dict[str, tuple[str, ...]] = {
    "--tdp-w": ("estimated",),
    "--accelerator-w": ("estimated",),
    "--idle-s": ("rapl", "auto"),
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


def idle_power(meter: Any) -> tuple[float | None, str]:
    """Idle power subtracted by the meter or its parts (W, summed over domains), and where it came from."""
    watts: float | None = None
    for part in [meter, *getattr(meter, "meters", [])]:
        per_domain = getattr(part, "idle_w", None)
        if per_domain:
            watts = (watts or 0.0) + float(sum(per_domain.values()))
    if watts is None:
        return None, "not measured (nothing subtracted)"
    return watts, "measured by the meter before the run (RAPL domains, eq. 7), subtracted from every trial"
