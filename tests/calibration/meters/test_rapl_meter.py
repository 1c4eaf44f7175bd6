"""RAPL against a powercap tree written to a temporary directory: domains, wraparound, idle, permissions."""

from __future__ import annotations

import os
import time
import types
from pathlib import Path

import pytest
from hybridsim.calibration.meters import rapl
from hybridsim.calibration.meters.common import MeterUnavailable
from hybridsim.calibration.meters.rapl import RaplMeter, wrapped_delta_uj
from meter_fakes import get_energy, powercap_tree, set_energy, write_zone


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return powercap_tree(tmp_path / "powercap")


class FakeClock:
    """Replaces the meter's `time`: sleeping advances the clock and runs the load it was given."""

    def __init__(self) -> None:
        self.now = 100.0
        self.load: dict[str, float] = {}
        self.root: Path | None = None

    def perf_counter(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        assert self.root is not None
        for zone, watts in self.load.items():
            set_energy(self.root, zone, get_energy(self.root, zone) + round(watts * seconds * 1e6))
        self.now += seconds


@pytest.fixture
def clock(tree: Path, monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    fake.root = tree
    monkeypatch.setattr(rapl, "time", types.SimpleNamespace(perf_counter=fake.perf_counter, sleep=fake.sleep))
    return fake


def test_finds_package_and_dram_of_every_socket_and_nothing_counted_twice(tree: Path) -> None:
    meter = RaplMeter(tree, sample_interval_s=None)
    # core is inside package-0, psys overlaps everything, mmio is package-0 again: all left out
    assert meter.domain_names == ["cpu:package-0", "dram:0", "cpu:package-1", "dram:1"]
    assert RaplMeter(tree, include_dram=False).domain_names == ["cpu:package-0", "cpu:package-1"]


def test_nested_layout_is_read_the_same(tmp_path: Path) -> None:
    root = tmp_path / "intel-rapl"
    package = write_zone(root, "intel-rapl:0", "package-0", 10, 1000)
    write_zone(package, "intel-rapl:0:2", "dram", 20, 1000)
    assert RaplMeter(root).domain_names == ["cpu:package-0", "dram:0"]


def test_window_energy_is_counter_difference_per_domain(tree: Path) -> None:
    meter = RaplMeter(tree, sample_interval_s=None)
    meter.begin_window()
    set_energy(tree, "intel-rapl:0", 1_000_000 + 12_500_000)
    set_energy(tree, "intel-rapl:0:1", 2_000_000 + 3_000_000)
    set_energy(tree, "intel-rapl:1", 3_000_000 + 11_000_000)
    set_energy(tree, "intel-rapl:2", 99_000_000)  # psys moves too, and must not count
    m = meter.end_window()
    assert m.energy_j == pytest.approx(
        {"cpu:package-0": 12.5, "dram:0": 3.0, "cpu:package-1": 11.0, "dram:1": 0.0}
    )
    assert m.gross_energy_j == m.energy_j
    assert m.cpu_energy_j == pytest.approx(26.5)  # packages + DRAM
    assert not m.estimated and "no idle subtracted" in m.method


def test_one_wraparound_per_window_is_corrected(tree: Path) -> None:
    max_uj = 262_143_328_850
    set_energy(tree, "intel-rapl:0", max_uj - 1_000_000)
    meter = RaplMeter(tree, sample_interval_s=None)
    meter.begin_window()
    set_energy(tree, "intel-rapl:0", 500_000)  # wrapped: 1.0 J to the top, 0.5 J after zero
    m = meter.end_window()
    assert m.energy_j["cpu:package-0"] == pytest.approx(1.5)
    assert any("wrap" in note for note in m.notes)
    assert wrapped_delta_uj(10, 30, 100) == 20 and wrapped_delta_uj(90, 5, 100) == 15


def _wait_for_polls(meter: RaplMeter, polls: int) -> None:
    accumulator = meter._window[0]  # type: ignore[index]
    deadline = time.monotonic() + 5.0
    while accumulator.polls < polls and time.monotonic() < deadline:
        time.sleep(0.005)


def test_sampler_keeps_long_windows_with_several_wraps_correct(tree: Path) -> None:
    """A 1000 J counter wraps twice in one window: only a sampler in between can see both."""

    def run(sample_interval_s: float | None) -> float:
        (tree / "intel-rapl:1" / "max_energy_range_uj").write_text("1000000000\n")
        set_energy(tree, "intel-rapl:1", 900_000_000)
        meter = RaplMeter(tree, sample_interval_s=sample_interval_s, include_dram=False)
        meter.begin_window()
        for step, value in enumerate(
            [100_000_000, 950_000_000, 50_000_000], start=1
        ):  # +200 J, +850 J, +100 J
            set_energy(tree, "intel-rapl:1", value)
            if sample_interval_s is not None:
                _wait_for_polls(meter, step + 1)
        return meter.end_window().energy_j["cpu:package-1"]

    assert run(0.01) == pytest.approx(1150.0)
    assert run(None) == pytest.approx(150.0)  # what a two-reading meter gets: one whole range lost


def test_measured_idle_is_subtracted_as_eq_7_with_gross_kept(tree: Path, clock: FakeClock) -> None:
    meter = RaplMeter(tree, sample_interval_s=None)
    clock.load = {"intel-rapl:0": 40.0, "intel-rapl:1": 35.0, "intel-rapl:0:1": 5.0}
    idle = meter.measure_idle(2.0)
    assert idle == pytest.approx({"cpu:package-0": 40.0, "dram:0": 5.0, "cpu:package-1": 35.0, "dram:1": 0.0})

    clock.load = {"intel-rapl:0": 100.0, "intel-rapl:1": 35.0, "intel-rapl:0:1": 8.0}
    meter.begin_window()
    clock.advance(1.5)
    m = meter.end_window()
    assert m.elapsed_s == pytest.approx(1.5)
    assert m.gross_energy_j == pytest.approx(
        {"cpu:package-0": 150.0, "dram:0": 12.0, "cpu:package-1": 52.5, "dram:1": 0.0}
    )
    # net = gross - idle_W x elapsed
    assert m.energy_j == pytest.approx(
        {"cpu:package-0": 90.0, "dram:0": 4.5, "cpu:package-1": 0.0, "dram:1": 0.0}, abs=1e-6
    )
    assert "idle 80.00 W subtracted" in m.method and "measured over 2.0 s" in m.method


def test_given_idle_power_can_make_net_negative_and_says_so(tree: Path, clock: FakeClock) -> None:
    meter = RaplMeter(tree, sample_interval_s=None, idle_w={"cpu:package-0": 37.5, "cpu:package-1": 37.5})
    clock.load = {"intel-rapl:0": 30.0, "intel-rapl:1": 45.0}
    meter.begin_window()
    clock.advance(2.0)
    m = meter.end_window()
    assert m.energy_j["cpu:package-0"] == pytest.approx(60.0 - 75.0)
    assert m.energy_j["cpu:package-1"] == pytest.approx(90.0 - 75.0)
    assert any("below zero" in note for note in m.notes)
    # the paper subtracted idle from the packages only: the DRAM domains stay gross, and the profile says so
    assert "subtracted from cpu:package-0, cpu:package-1" in m.method
    assert any("no idle baseline for ['dram:0', 'dram:1']" in note for note in m.notes)


def test_missing_tree_says_so(tmp_path: Path) -> None:
    with pytest.raises(MeterUnavailable, match="does not exist.*powercap"):
        RaplMeter(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MeterUnavailable, match="no intel-rapl"):
        RaplMeter(tmp_path / "empty")


def test_missing_energy_file_is_named(tree: Path) -> None:
    (tree / "intel-rapl:1" / "energy_uj").unlink()
    with pytest.raises(MeterUnavailable, match=r"intel-rapl:1/energy_uj does not exist"):
        RaplMeter(tree)


def test_permission_denied_names_the_file_and_the_fix(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    locked = tree / "intel-rapl:0" / "energy_uj"
    read_text = Path.read_text

    def denied(self: Path, *args: object, **kwargs: object) -> str:
        if self == locked:
            raise PermissionError(13, "Permission denied", str(self))
        return read_text(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", denied)  # root reads through chmod 000, so deny it here
    with pytest.raises(MeterUnavailable) as error:
        RaplMeter(tree)
    assert str(locked) in str(error.value)
    assert (
        "permission denied" in str(error.value)
        and "chmod a+r" in str(error.value)
        and "root" in str(error.value)
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_chmod_000_energy_file_is_unreadable(tree: Path) -> None:
    locked = tree / "intel-rapl:1" / "energy_uj"
    locked.chmod(0)
    with pytest.raises(MeterUnavailable, match="permission denied"):
        RaplMeter(tree)
