"""Choosing a meter by name, and `auto`: the best counters this machine has, or a clear refusal.

`auto` takes NVIDIA GPUs through NVML when a GPU is visible, together with RAPL for the CPU side when its
files are readable (one `CompositeMeter`); otherwise RAPL alone; otherwise powermetrics on an Apple
Silicon Mac. When none works it raises `MeterUnavailable` listing why each failed, and so it does when
GPUs were asked for (`gpu_indices`, as the CLI does for `--device cuda`) and NVML cannot read them,
rather than measure a GPU run with a CPU-only meter. It never falls back to the `estimated` meter: a profile
built from a model instead of a counter must be asked for by name (`--meter estimated`), so that nobody
mistakes one for the other.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

from hybridsim.core.errors import HybridsimError

from .common import EnergyMeter, Measurement, MeterUnavailable
from .rapl import DEFAULT_POWERCAP_ROOT

METER_NAMES = ("nvidia", "rapl", "powermetrics", "uprof", "estimated")
"""The concrete meters, in the order `auto` would consider the counters among them."""


class CompositeMeter(EnergyMeter):
    """Several meters over the same window (GPU from one, CPU from another), their domains merged.

    Windows open in the given order and close in reverse, so the outer meters bracket the inner ones; the
    few milliseconds between them are the only skew. Domain names must not collide.
    """

    def __init__(self, meters: Sequence[EnergyMeter]) -> None:
        if not meters:
            raise HybridsimError("meter: a composite meter needs at least one meter")
        self.meters = list(meters)
        self.name = "+".join(meter.name for meter in self.meters)
        self.scope = "; ".join(f"{meter.name}: {meter.scope}" for meter in self.meters)
        self.estimated = any(meter.estimated for meter in self.meters)

    def begin_window(self) -> None:
        opened: list[EnergyMeter] = []
        try:
            for meter in self.meters:
                meter.begin_window()
                opened.append(meter)
        except BaseException:
            for meter in reversed(opened):
                with contextlib.suppress(Exception):
                    meter.end_window()
            raise

    def end_window(self) -> Measurement:
        parts = [(meter, meter.end_window()) for meter in reversed(self.meters)][::-1]
        energy: dict[str, float] = {}
        gross: dict[str, float] = {}
        for meter, part in parts:
            clash = sorted(set(energy) & set(part.energy_j))
            if clash:
                raise HybridsimError(
                    f"meter: {meter.name} measures domains {clash} that another meter already covers"
                )
            energy.update(part.energy_j)
            gross.update(part.gross_energy_j if part.gross_energy_j is not None else part.energy_j)
        with_gross = any(part.gross_energy_j is not None for _, part in parts)
        return Measurement(
            elapsed_s=max(part.elapsed_s for _, part in parts),
            energy_j=energy,
            method=" + ".join(f"{meter.name}: {part.method}" for meter, part in parts),
            estimated=any(part.estimated for _, part in parts),
            gross_energy_j=gross if with_gross else None,
            samples=sum(part.samples for _, part in parts),
            notes=tuple(f"{meter.name}: {note}" for meter, part in parts for note in part.notes),
        )

    def measure_idle(self, seconds: float = 10.0) -> dict[str, float]:
        """Measure the idle baseline of every part that subtracts one (RAPL), one after another."""
        idle: dict[str, float] = {}
        for meter in self.meters:
            measure = getattr(meter, "measure_idle", None)
            if measure is not None:
                idle.update(measure(seconds))
        return idle

    def describe(self) -> dict[str, object]:
        return {
            "meter": self.name,
            "parts": [
                describe() if (describe := getattr(meter, "describe", None)) else {"meter": meter.name}
                for meter in self.meters
            ],
        }

    def close(self) -> None:
        for meter in self.meters:
            meter.close()


def select_meter(
    name: str = "auto",
    *,
    gpu_indices: Sequence[int] | None = None,
    rapl_root: Path | str = DEFAULT_POWERCAP_ROOT,
    rapl_idle_s: float = 0.0,
    rapl_idle_w: Mapping[str, float] | None = None,
    tdp_w: float | None = None,
    cores: int | None = None,
    accelerator_w: float = 0.0,
    uprof_csv: Path | str | None = None,
    uprof_cores: Sequence[int] | None = None,
    powermetrics_interval_ms: int = 200,
) -> EnergyMeter:
    """The meter called `name` ('auto', 'nvidia', 'rapl', 'powermetrics', 'uprof', 'estimated'), ready to use.

    Raises `MeterUnavailable` (why) when this machine cannot be measured that way. With `rapl_idle_s > 0`
    the RAPL meter (alone or inside `auto`) first measures the idle baseline for that long (eq. 7).
    """
    if name == "nvidia":
        from .nvidia import NvidiaMeter

        return NvidiaMeter(gpu_indices)
    if name == "rapl":
        from .rapl import RaplMeter

        meter = RaplMeter(rapl_root, idle_w=rapl_idle_w)
        if rapl_idle_s > 0:
            meter.measure_idle(rapl_idle_s)
        return meter
    if name == "powermetrics":
        from .apple import PowermetricsMeter

        return PowermetricsMeter(powermetrics_interval_ms)
    if name == "uprof":
        if uprof_csv is None:
            raise MeterUnavailable(
                "uprof: needs an AMD uProf timechart CSV (uprof_csv=..., `--uprof-csv PATH`)"
            )
        from .uprof import UProfMeter

        return UProfMeter(uprof_csv, cores=uprof_cores)
    if name == "estimated":
        from .estimated import EstimatedMeter

        return EstimatedMeter(tdp_w, cores=cores, accelerator_w=accelerator_w)
    if name != "auto":
        raise HybridsimError(f"meter: unknown meter {name!r}; choose one of auto, {', '.join(METER_NAMES)}")

    def attempt(which: str) -> EnergyMeter | str:
        try:
            return select_meter(
                which,
                gpu_indices=gpu_indices,
                rapl_root=rapl_root,
                rapl_idle_s=rapl_idle_s,
                rapl_idle_w=rapl_idle_w,
                powermetrics_interval_ms=powermetrics_interval_ms,
            )
        except MeterUnavailable as error:
            return str(error)

    gpu = attempt("nvidia")
    if not isinstance(gpu, EnergyMeter) and gpu_indices is not None:
        # The caller runs on these GPUs: a CPU-only meter would miss most of the energy. Refused before RAPL
        # is opened, which would first spend `rapl_idle_s` measuring an idle baseline for nothing.
        raise MeterUnavailable(
            f"meter auto: the GPUs {list(gpu_indices)} cannot be metered ({gpu}); pass "
            "`--meter rapl` to measure only the CPU side, or `--meter estimated`"
        )
    cpu = attempt("rapl")
    if isinstance(gpu, EnergyMeter):
        if isinstance(cpu, EnergyMeter):
            return CompositeMeter([gpu, cpu])
        warnings.warn(
            f"meter auto: measuring the GPUs only; the CPU side is not metered ({cpu})", stacklevel=2
        )
        return gpu
    if isinstance(cpu, EnergyMeter):
        return cpu
    mac = attempt("powermetrics")
    if isinstance(mac, EnergyMeter):
        return mac
    raise MeterUnavailable(
        f"meter auto: no energy counter on this machine ({gpu}; {cpu}; {mac}); "
        "use `--meter estimated` for a CPU-time estimate, labelled estimated"
    )


def available_meters(**options: object) -> dict[str, str | None]:
    """Each concrete meter's name -> None when it can run here, else the reason it cannot.

    Takes `select_meter`'s keyword options (a RAPL idle measurement is never run for this check).
    """
    options = {**options, "rapl_idle_s": 0.0}
    result: dict[str, str | None] = {}
    for name in METER_NAMES:
        try:
            select_meter(name, **options).close()  # type: ignore[arg-type]
        except HybridsimError as error:
            result[name] = str(error)
        else:
            result[name] = None
    return result
