"""NVIDIA meter with an in-memory pynvml: the energy counter, power polling, and the refusals."""

from __future__ import annotations

import sys
import time

import pytest
from hybridsim.calibration.meters.common import MeterUnavailable
from hybridsim.calibration.meters.nvidia import (
    COUNTER_METHOD,
    POLLING_METHOD,
    NvidiaMeter,
    trapezoid_energy_j,
)
from meter_fakes import FakeGpu, FakeNvml


@pytest.fixture
def nvml(monkeypatch: pytest.MonkeyPatch) -> FakeNvml:
    state = FakeNvml(gpus=[FakeGpu(), FakeGpu(name="Tesla P100-PCIE-16GB", energy_mj=None, power_mw=250_000)])
    monkeypatch.setitem(sys.modules, "pynvml", state.module())
    return state


def test_counter_path_is_the_difference_of_the_millijoule_counter(nvml: FakeNvml) -> None:
    meter = NvidiaMeter([0])
    meter.begin_window()
    nvml.gpus[0].energy_mj += 123_456
    m = meter.end_window()
    assert m.energy_j == {"gpu:0": pytest.approx(123.456)}
    assert m.method == COUNTER_METHOD and not m.estimated
    assert m.gpu_energy_j == pytest.approx(123.456) and m.cpu_energy_j == 0.0
    meter.close()
    assert nvml.shutdowns == 1


def test_polling_path_integrates_power_at_10_hz_or_more(nvml: FakeNvml) -> None:
    meter = NvidiaMeter([1], poll_interval_s=0.02)
    meter.begin_window()
    time.sleep(0.3)
    m = meter.end_window()
    meter.close()
    # constant 250 W: the trapezoid is exact over the sampled span, which is the window to within a read
    assert m.energy_j["gpu:1"] == pytest.approx(250.0 * m.elapsed_s, rel=0.05)
    assert m.samples >= 0.3 * 10
    assert POLLING_METHOD in m.method and "trapezoid" in m.method


def test_mixed_boards_report_each_method(nvml: FakeNvml) -> None:
    with NvidiaMeter() as meter:
        meter.begin_window()
        nvml.gpus[0].energy_mj += 5_000
        time.sleep(0.05)
        m = meter.end_window()
        description = meter.describe()
    assert list(m.energy_j) == ["gpu:0", "gpu:1"]
    assert m.energy_j["gpu:0"] == pytest.approx(5.0)
    assert f"gpu:0 {COUNTER_METHOD}" in m.method and f"gpu:1 {POLLING_METHOD}" in m.method
    assert description["driver_version"] == "550.54.15"
    assert [gpu["name"] for gpu in description["gpus"]] == ["NVIDIA H100 80GB HBM3", "Tesla P100-PCIE-16GB"]


def test_trapezoid_of_a_ramp() -> None:
    assert trapezoid_energy_j([0.0, 1.0, 3.0], [100.0, 200.0, 200.0]) == pytest.approx(150.0 + 400.0)
    assert trapezoid_energy_j([1.0], [300.0]) == 0.0


def test_no_pynvml_no_driver_no_gpu_are_each_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)
    with pytest.raises(MeterUnavailable, match="pynvml is not installed"):
        NvidiaMeter()
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml(driver_loaded=False).module())
    with pytest.raises(MeterUnavailable, match="NVML did not start.*Driver Not Loaded"):
        NvidiaMeter()
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml(gpus=[]).module())
    with pytest.raises(MeterUnavailable, match="sees no GPU"):
        NvidiaMeter()
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml().module())
    with pytest.raises(MeterUnavailable, match=r"GPU index \[3\] does not exist"):
        NvidiaMeter([3])


def test_polling_slower_than_10_hz_is_refused(nvml: FakeNvml) -> None:
    with pytest.raises(Exception, match=">= 10 Hz"):
        NvidiaMeter(poll_interval_s=0.5)
