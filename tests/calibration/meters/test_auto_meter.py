"""`auto`: counters when there are any, a refusal with every reason when not, `estimated` only on request."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hybridsim.calibration.meters import apple
from hybridsim.calibration.meters.auto import METER_NAMES, CompositeMeter, available_meters, select_meter
from hybridsim.calibration.meters.common import MeterUnavailable
from hybridsim.calibration.meters.estimated import EstimatedMeter
from hybridsim.calibration.meters.nvidia import NvidiaMeter
from hybridsim.calibration.meters.rapl import RaplMeter
from meter_fakes import FakeNvml, powercap_tree, set_energy

from hybridsim.core.errors import HybridsimError


@pytest.fixture
def bare_machine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No pynvml, no powercap tree, not a Mac: returns the (absent) powercap root to pass."""
    monkeypatch.setitem(sys.modules, "pynvml", None)
    monkeypatch.setattr(apple.platform, "system", lambda: "Linux")
    return tmp_path / "no-powercap"


def test_auto_refuses_with_every_reason_and_no_silent_estimate(bare_machine: Path) -> None:
    with pytest.raises(MeterUnavailable) as error:
        select_meter("auto", rapl_root=bare_machine)
    message = str(error.value)
    assert "nvidia: pynvml is not installed" in message
    assert f"rapl: {bare_machine} does not exist" in message
    assert "powermetrics: needs macOS" in message
    assert "--meter estimated" in message


def test_estimated_only_when_asked(bare_machine: Path) -> None:
    meter = select_meter("estimated", tdp_w=65.0, cores=8)
    assert (
        isinstance(meter, EstimatedMeter)
        and meter.estimated
        and meter.watts_per_core == pytest.approx(65.0 / 8)
    )


def test_available_meters_names_each_reason(bare_machine: Path) -> None:
    available = available_meters(rapl_root=bare_machine)
    assert list(available) == list(METER_NAMES)
    assert available["estimated"] is None
    assert available["uprof"] is not None and "timechart" in available["uprof"]
    assert all(available[name] for name in ("nvidia", "rapl", "powermetrics"))


def test_available_meters_on_this_machine_agrees_with_auto() -> None:
    available = available_meters()
    assert available["estimated"] is None
    counters = [name for name in ("nvidia", "rapl", "powermetrics") if available[name] is None]
    if counters:
        meter = select_meter("auto")
        assert counters[0] in meter.name.split("+")
        meter.close()
    else:
        with pytest.raises(MeterUnavailable, match="no energy counter on this machine"):
            select_meter("auto")


def test_auto_combines_gpu_and_rapl_into_one_window(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    nvml = FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", nvml.module())
    root = powercap_tree(tmp_path / "powercap")
    meter = select_meter("auto", rapl_root=root)
    assert isinstance(meter, CompositeMeter) and meter.name == "nvidia+rapl"
    meter.begin_window()
    nvml.gpus[0].energy_mj += 200_000
    set_energy(root, "intel-rapl:0", 1_000_000 + 30_000_000)
    m = meter.end_window()
    meter.close()
    assert m.gpu_energy_j == pytest.approx(200.0)
    assert m.energy_j["cpu:package-0"] == pytest.approx(30.0)
    assert m.total_energy_j == pytest.approx(230.0)
    assert "nvidia: nvml-total-energy-counter" in m.method and "rapl: rapl-sysfs" in m.method
    assert m.gross_energy_j is not None and m.gross_energy_j["gpu:0"] == pytest.approx(200.0)
    assert {part["meter"] for part in meter.describe()["parts"]} == {"nvidia", "rapl"}


def test_auto_takes_what_there_is(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml().module())
    with pytest.warns(UserWarning, match="GPUs only"):
        gpu_only = select_meter("auto", rapl_root=tmp_path / "absent")
    assert isinstance(gpu_only, NvidiaMeter)
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml(gpus=[]).module())
    assert isinstance(select_meter("auto", rapl_root=powercap_tree(tmp_path / "powercap")), RaplMeter)


def test_auto_refuses_a_cpu_only_meter_when_gpus_were_asked_for(bare_machine: Path, tmp_path: Path) -> None:
    root = powercap_tree(tmp_path / "powercap")
    assert isinstance(select_meter("auto", rapl_root=root), RaplMeter)  # no GPU wanted: the CPU is what runs
    with pytest.raises(
        MeterUnavailable, match=r"GPUs \[0\] cannot be metered \(nvidia: pynvml is not installed"
    ):
        select_meter("auto", rapl_root=root, gpu_indices=[0])


def test_unknown_name_and_uprof_without_file() -> None:
    with pytest.raises(HybridsimError, match="unknown meter 'joulemeter'"):
        select_meter("joulemeter")
    with pytest.raises(MeterUnavailable, match="uprof: needs an AMD uProf timechart"):
        select_meter("uprof")
