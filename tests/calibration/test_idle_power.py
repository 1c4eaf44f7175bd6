"""`calibrate` records each profile's idle power: measured where the meter can, a
stated 0 W where it cannot.
"""

from __future__ import annotations

from typing import Any

import pytest
from hybridsim.calibration import cli_meter
from hybridsim.calibration.cli_meter import ESTIMATED_IDLE, idle_power
from hybridsim.calibration.meters.common import EnergyMeter, Measurement


class IdleMeter(EnergyMeter):
    """A meter that reads `watts` on the GPU over whatever window it is asked for."""

    def __init__(self, name: str, watts: float, idle_w: dict[str, float] | None = None) -> None:
        self.name, self.watts, self.idle_w, self.windows = name, watts, idle_w, 0

    def begin_window(self) -> None:
        self.windows += 1

    def end_window(self) -> Measurement:
        return Measurement(elapsed_s=2.0, energy_j={"gpu:0": 2.0 * self.watts}, method="fake")


class Composite(IdleMeter):
    """RAPL subtracting its baseline beside NVML: the net reading lacks the baseline, the gross one has it."""

    def __init__(self, *meters: IdleMeter) -> None:
        super().__init__("+".join(m.name for m in meters), sum(m.watts for m in meters))
        self.meters = list(meters)

    def end_window(self) -> Measurement:
        baseline = sum(sum((m.idle_w or {}).values()) for m in self.meters)
        net = {"gpu:0": 2.0 * self.watts, "cpu:0": 0.0}
        return Measurement(2.0, net, "fake", gross_energy_j={**net, "cpu:0": 2.0 * baseline})


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(cli_meter.time, "sleep", slept.append)
    return slept


def test_an_nvml_like_meter_measures_an_idle_window_before_the_sweep(no_sleep: list[float]) -> None:
    meter = IdleMeter("nvidia", watts=61.5)
    watts, source = idle_power(meter, None)
    assert watts == pytest.approx(61.5) and meter.windows == 1
    assert no_sleep == [cli_meter.IDLE_WINDOW_S]
    assert source.startswith("metered: an idle window of 5 s before the sweep")
    assert "model loaded; not subtracted from the trials" in source
    idle_power(meter, 12.0)
    assert no_sleep[-1] == 12.0
    assert idle_power(meter, 0.0) == (None, "not measured (--idle-s 0)")  # 0 skips it, as its help says
    assert meter.windows == 2 and no_sleep[-1] == 12.0


def test_rapl_with_a_subtracted_baseline_reports_that_baseline(no_sleep: list[float]) -> None:
    meter = IdleMeter("rapl", watts=0.0, idle_w={"cpu:0": 30.0, "dram:0": 4.0})
    watts, source = idle_power(meter, 10.0)
    assert watts == pytest.approx(34.0) and meter.windows == 0 and no_sleep == []
    assert "subtracted from every trial" in source


def test_auto_adds_the_gpu_idle_window_to_the_rapl_baseline() -> None:
    meter = Composite(IdleMeter("rapl", 0.0, idle_w={"cpu:0": 30.0}), IdleMeter("nvidia", 55.0))
    watts, source = idle_power(meter, 10.0)
    assert watts == pytest.approx(85.0)  # the gross window: the GPU's 55 W and the CPU's 30 W baseline
    assert "idle window of 10 s" in source and "RAPL baseline 30 W" in source


def test_the_estimated_meter_says_zero_and_why(no_sleep: list[Any]) -> None:
    meter = IdleMeter("estimated", watts=99.0)
    assert idle_power(meter, None) == (0.0, ESTIMATED_IDLE)
    assert meter.windows == 0 and no_sleep == []
