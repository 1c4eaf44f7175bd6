"""powermetrics: the text parser on recorded-format output (eqs. 5-6), and the live meter on a fake binary."""

from __future__ import annotations

import platform
import stat
import sys
import time
from pathlib import Path

import pytest
from hybridsim.calibration.meters import apple
from hybridsim.calibration.meters.apple import (
    PowermetricsMeter,
    PowermetricsSample,
    energy_from_samples,
    overlap_fraction,
    parse_powermetrics,
)
from hybridsim.calibration.meters.common import MeterUnavailable
from meter_fakes import DATA

from hybridsim.core.errors import HybridsimError

OUR_PID, OUR_CHILD = 48213, 48230


@pytest.fixture(scope="module")
def samples() -> list[PowermetricsSample]:
    return parse_powermetrics((DATA / "powermetrics_m1pro.txt").read_text())


def test_every_sample_is_read_once_whatever_the_macos_layout(samples: list[PowermetricsSample]) -> None:
    # sample 1: GPU Power in both sections; samples 2-3: Combined Power and GPU HW active residency lines
    assert [s.elapsed_ms for s in samples] == [204.53, 201.87, 203.02]
    assert [s.cpu_mw for s in samples] == [5120.0, 4875.0, 3960.0]
    assert [s.gpu_mw for s in samples] == [7830.0, 8012.0, 6520.0]
    assert [s.all_tasks_impact for s in samples] == [1015.50, 988.12, 852.33]
    assert samples[0].task_name[1877] == "Google Chrome Helper (GPU)"
    assert samples[0].task_impact[OUR_PID] == 812.40


def test_energy_follows_eqs_5_and_6_by_hand(samples: list[PowermetricsSample]) -> None:
    cpu = (
        5120 * 204.53 * 812.40 / 1015.50 + 4875 * 201.87 * 790.25 / 988.12 + 3960 * 203.02 * 655.70 / 852.33
    ) / 1e6
    gpu = (7830 * 204.53 + 8012 * 201.87 + 6520 * 203.02) / 1e6
    assert cpu == pytest.approx(2.2433, abs=1e-4) and gpu == pytest.approx(4.5425, abs=1e-4)
    energy = energy_from_samples(samples, pids={OUR_PID})
    assert energy == {"cpu:process-share": pytest.approx(cpu), "gpu:0": pytest.approx(gpu)}


def test_process_share_by_pid_or_by_name_as_the_paper_did(samples: list[PowermetricsSample]) -> None:
    with_child = energy_from_samples(samples, pids={OUR_PID, OUR_CHILD})["cpu:process-share"]
    by_name = energy_from_samples(samples, names={"python3.11"})["cpu:process-share"]
    child = (5120 * 204.53 * 20.10 / 1015.50 + 0.0 + 3960 * 203.02 * 15.35 / 852.33) / 1e6
    own = energy_from_samples(samples, pids={OUR_PID})["cpu:process-share"]
    assert with_child == pytest.approx(own + child)
    assert by_name == pytest.approx(with_child)
    assert energy_from_samples(samples, pids={999_999})["cpu:process-share"] == 0.0


def test_energy_impact_not_last_and_watts_are_read() -> None:
    text = """*** Sampled system activity (Wed Apr  3 01:47:29 2024 +0100) (100.00ms elapsed) ***
Name                               ID     Energy Impact  GPU ms/s
python3.11                         4242   300.00         12.00
ALL_TASKS                          -2     600.00         40.00

CPU Power: 1.5 W
GPU Power: 10 mW
"""
    (sample,) = parse_powermetrics(text)
    assert sample.energy_j({4242}) == (pytest.approx(1500 * 100 * 0.5 / 1e6), pytest.approx(10 * 100 / 1e6))


def test_output_without_energy_impact_is_refused() -> None:
    text = "*** Sampled system activity (x) (200.00ms elapsed) ***\n\nCPU Power: 100 mW\nGPU Power: 10 mW\n"
    (sample,) = parse_powermetrics(text)
    with pytest.raises(HybridsimError, match="--show-process-energy"):
        sample.energy_j({1})


def test_samples_straddling_a_window_count_by_overlap() -> None:
    sample = PowermetricsSample(
        elapsed_ms=200.0, cpu_mw=0, gpu_mw=0, ane_mw=0, all_tasks_impact=1, received_at=10.0
    )
    assert overlap_fraction(sample, 9.9, 12.0) == pytest.approx(0.5)
    assert overlap_fraction(sample, 0.0, 9.8) == 0.0
    assert overlap_fraction(sample, 9.0, 11.0) == pytest.approx(1.0)


@pytest.mark.skipif(platform.system() == "Darwin", reason="this checks the refusal off macOS")
def test_not_on_macos_is_unavailable() -> None:
    with pytest.raises(MeterUnavailable, match="needs macOS"):
        PowermetricsMeter()


FAKE_POWERMETRICS = """#!{python}
import sys, time
while True:
    time.sleep(0.1)
    print("*** Sampled system activity (Wed Apr  3 01:47:29 2024 +0100) (100.00ms elapsed) ***")
    print("Name                               ID     CPU ms/s  Energy Impact")
    print("python3.11                         4242   900.00    300.00")
    print("ALL_TASKS                          -2     1000.00   600.00")
    print("")
    print("CPU Power: 5000 mW")
    print("GPU Power: 8000 mW")
    print("Combined Power (CPU + GPU + ANE): 13000 mW")
    sys.stdout.flush()
"""


def test_live_meter_reads_a_running_powermetrics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in binary prints 5 W CPU (our share 1/2) and 8 W GPU every 100 ms."""
    binary = tmp_path / "powermetrics"
    binary.write_text(FAKE_POWERMETRICS.format(python=sys.executable))
    binary.chmod(binary.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(apple.platform, "system", lambda: "Darwin")
    monkeypatch.setattr(apple.platform, "machine", lambda: "arm64")
    monkeypatch.setattr(apple.os, "geteuid", lambda: 0)
    with PowermetricsMeter(100, pids={4242}, executable=str(binary)) as meter:
        meter.begin_window()  # starts the process and waits for its first sample before opening the window
        time.sleep(0.6)
        m = meter.end_window()
        meter.begin_window()  # the same process serves the next window
        time.sleep(0.3)
        second = meter.end_window()
    assert m.elapsed_s == pytest.approx(0.6, abs=0.1)
    assert m.energy_j["gpu:0"] == pytest.approx(8.0 * m.elapsed_s, rel=0.15)
    assert m.energy_j["cpu:process-share"] == pytest.approx(5.0 * 0.5 * m.elapsed_s, rel=0.15)
    assert m.samples >= 5
    assert second.energy_j["gpu:0"] == pytest.approx(8.0 * second.elapsed_s, rel=0.15)
