"""AMD uProf timechart: parsing, per-core attribution over a window (eq. 8), and the refusals."""

from __future__ import annotations

import os
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hybridsim.calibration.meters.common import MeterUnavailable
from hybridsim.calibration.meters.uprof import UProfMeter, parse_timechart
from meter_fakes import DATA

from hybridsim.core.errors import HybridsimError

TIMECHART = DATA / "uprof_timechart.csv"

# Records every 0.5 s from 14:05:11.000 (record 6 a millisecond late); each is the mean power over the
# interval ending at it. The window 14:05:11.750-14:05:13.250 covers the last half of record 3's interval,
# all of records 4 and 5, and the first 0.25 s of record 6's.
CORE0 = 0.25 * 6.85 + 0.5 * 7.02 + 0.5 * 6.96 + 0.25 * 7.10  # 10.4775 J
CORE1 = 0.25 * 5.92 + 0.5 * 6.10 + 0.5 * 6.04 + 0.25 * 5.88  # 9.02 J


def test_parse_reads_core_columns_and_ignores_package_and_preamble() -> None:
    trace = parse_timechart(TIMECHART.read_text())
    assert trace.cores == [0, 1, 2, 3]
    assert trace.interval_s == pytest.approx(0.5)
    assert trace.seconds[5] == pytest.approx(2.501)
    assert trace.core_power_w[3][0] == 0.31
    assert trace.start_epoch == pytest.approx(datetime(2024, 3, 28, 14, 5, 11).timestamp())


def test_window_energy_by_hand_on_the_cores_the_process_ran_on() -> None:
    meter = UProfMeter(TIMECHART, cores=[0, 1])
    start, end = datetime(2024, 3, 28, 14, 5, 11, 750_000), datetime(2024, 3, 28, 14, 5, 13, 250_000)
    m = meter.energy_between(start.timestamp(), end.timestamp())
    assert m.energy_j == {"cpu:core-0": pytest.approx(CORE0), "cpu:core-1": pytest.approx(CORE1)}
    assert m.cpu_energy_j == pytest.approx(19.4975)
    assert m.elapsed_s == pytest.approx(1.5)
    assert "eq. 8" in m.method and not m.estimated
    assert meter.energy_between(0.75, 2.25, relative=True).energy_j == m.energy_j


def test_more_cores_more_energy_and_whole_file_matches_mean_power() -> None:
    meter = UProfMeter(TIMECHART, cores=[0])
    all_cores = meter.energy_between(0.75, 2.25, cores=[0, 1, 2, 3], relative=True).cpu_energy_j
    assert all_cores == pytest.approx(
        CORE0
        + CORE1
        + 0.25 * 0.44
        + 0.5 * 0.47
        + 0.5 * 0.39
        + 0.25 * 0.41
        + 0.25 * 0.30
        + 0.5 * 0.33
        + 0.5 * 0.28
        + 0.25 * 0.30
    )
    trace = meter.trace
    first, last = trace.span()
    whole = meter.energy_between(first, last, relative=True).cpu_energy_j
    widths = [0.5, 0.5, 0.5, 0.5, 0.5, 0.501, 0.499, 0.5, 0.5, 0.5]
    assert whole == pytest.approx(sum(w * p for w, p in zip(widths, trace.core_power_w[0], strict=True)))


def test_windows_outside_the_file_and_unknown_cores_are_refused() -> None:
    meter = UProfMeter(TIMECHART, cores=[0])
    with pytest.raises(HybridsimError, match="not inside the timechart"):
        meter.energy_between(3.0, 6.0, relative=True)
    with pytest.raises(HybridsimError, match=r"cores \[7\] have no power column"):
        meter.energy_between(0.0, 1.0, cores=[7], relative=True)


def test_midnight_rollover_keeps_time_increasing() -> None:
    text = "RecordId,Timestamp,core0-power\n1,23:59:59:500,2.0\n2,00:00:00:000,4.0\n3,00:00:00:500,6.0\n"
    trace = parse_timechart(text)
    assert list(trace.seconds) == pytest.approx([0.0, 0.5, 1.0])
    assert trace.start_epoch is None
    assert trace.core_energy_j([0], 0.0, 1.0) == {0: pytest.approx(0.5 * 4.0 + 0.5 * 6.0)}


def test_missing_or_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(MeterUnavailable, match="no timechart"):
        UProfMeter(tmp_path / "absent.csv", cores=[0])
    bad = tmp_path / "bad.csv"
    bad.write_text("RecordId,Timestamp,socket0-package-power\n1,10:00:00:000,30\n")
    with pytest.raises(HybridsimError, match="core<N>-power"):
        UProfMeter(bad, cores=[0])


def test_live_window_beyond_the_recorded_file_is_refused() -> None:
    """uProf writes the file when its session ends: a window now is not in a 2024 file."""
    meter = UProfMeter(TIMECHART, cores=[0])
    meter.begin_window()
    with pytest.raises(HybridsimError, match="not inside the timechart"):
        meter.end_window()


def _timechart_around_now(path: Path, cores: list[int], watts: float) -> None:
    """A timechart such as uProf writes when its session ends, covering the next few seconds."""
    start = datetime.now().replace(microsecond=0) - timedelta(seconds=2)
    lines = [
        "PROFILE DETAILS",
        f"Profile Start Time:,{start:%b-%d-%Y_%H-%M-%S}",
        "",
        "PROFILE RECORDS",
        "RecordId,Timestamp," + ",".join(f"core{core}-power" for core in cores),
    ]
    for record in range(1, 101):
        stamp = start + timedelta(seconds=0.1 * record)
        lines.append(
            f"{record},{stamp:%H:%M:%S}:{stamp.microsecond // 1000:03d},"
            + ",".join([f"{watts}"] * len(cores))
        )
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="core tracking reads /proc")
def test_live_window_on_the_cores_our_threads_ran_on(tmp_path: Path) -> None:
    allowed = sorted(os.sched_getaffinity(0))
    chart = tmp_path / "timechart.csv"
    _timechart_around_now(chart, allowed, watts=2.0)
    meter = UProfMeter(chart, track_cores=True)
    assert meter.cores == allowed  # the default: the process's CPU affinity
    meter.begin_window()
    stop = time.perf_counter() + 0.3
    while time.perf_counter() < stop:
        pass
    m = meter.end_window()
    used = [int(name.split("-")[1]) for name in m.energy_j]
    assert used and set(used) <= set(allowed)
    for joules in m.energy_j.values():
        assert joules == pytest.approx(2.0 * m.elapsed_s)
