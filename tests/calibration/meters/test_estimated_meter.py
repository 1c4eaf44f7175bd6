"""The estimated meter: always labelled, proportional to CPU time, and honest about its numbers."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from hybridsim.calibration.meters.estimated import DEFAULT_WATTS_PER_CORE, EstimatedMeter


def fake_cpu(*readings: float) -> Callable[[], float]:
    """A CPU-time clock that returns these readings in turn."""
    values = iter(readings)
    return lambda: next(values)


def test_energy_is_cpu_seconds_times_tdp_per_core_and_labelled_estimated() -> None:
    meter = EstimatedMeter(80.0, cores=8, cpu_seconds=fake_cpu(10.0, 12.5))
    meter.begin_window()
    m = meter.end_window()
    assert m.energy_j == {"cpu:process-estimate": pytest.approx(2.5 * 80.0 / 8)}
    assert m.estimated and meter.estimated
    assert m.method.startswith("estimated:") and "80 W TDP" in m.method and "8 cores" in m.method


def test_energy_scales_with_cpu_time() -> None:
    one = EstimatedMeter(64.0, cores=16, cpu_seconds=fake_cpu(0.0, 1.0))
    three = EstimatedMeter(64.0, cores=16, cpu_seconds=fake_cpu(5.0, 8.0))
    for meter in (one, three):
        meter.begin_window()
    assert three.end_window().total_energy_j == pytest.approx(3 * one.end_window().total_energy_j)


def test_real_cpu_work_costs_energy_and_sleeping_does_not() -> None:
    meter = EstimatedMeter(10.0, cores=1)
    meter.begin_window()
    # Spin until this process has had 0.1 s of CPU, however crowded the host (a wall-clock spin may get less).
    start, deadline = time.process_time(), time.perf_counter() + 30.0
    while time.process_time() - start < 0.1 and time.perf_counter() < deadline:
        pass
    busy = meter.end_window().cpu_energy_j
    meter.begin_window()
    time.sleep(0.2)
    idle = meter.end_window().cpu_energy_j
    assert busy > 0.5  # >= 0.05 CPU s x 10 W even on a crowded host
    assert idle < 0.2 * busy


def test_constant_accelerator_power_and_default_tdp_are_stated() -> None:
    meter = EstimatedMeter(cores=4, accelerator_w=30.0, cpu_seconds=fake_cpu(0.0, 0.0))
    meter.begin_window()
    time.sleep(0.05)
    m = meter.end_window()
    assert m.energy_j["gpu:constant-estimate"] == pytest.approx(30.0 * m.elapsed_s)
    assert meter.tdp_w == DEFAULT_WATTS_PER_CORE * 4
    assert "default" in m.method and "30 W accelerator" in m.method


def test_nonsense_is_refused() -> None:
    with pytest.raises(Exception, match="tdp_w must be > 0"):
        EstimatedMeter(0.0)
    with pytest.raises(Exception, match="accelerator_w"):
        EstimatedMeter(10.0, accelerator_w=-1.0)
