"""The background sampler behind power polling, RAPL wraparound and uProf core tracking."""

from __future__ import annotations

import time

import pytest
from hybridsim.calibration.meters.common import PeriodicSampler


def test_samples_until_stopped() -> None:
    calls: list[float] = []
    sampler = PeriodicSampler(lambda: calls.append(time.perf_counter()), 0.01, name="test")
    sampler.start()
    deadline = time.monotonic() + 10.0  # generous: the machine may be busy with other tests
    while len(calls) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    sampler.stop()
    count = len(calls)
    time.sleep(0.05)
    assert count >= 5 and len(calls) == count  # it sampled, and stopped sampling when told


def test_a_failed_sample_is_raised_by_stop() -> None:
    def broken() -> None:
        raise OSError("counter unreadable")

    sampler = PeriodicSampler(broken, 0.005, name="test")
    sampler.start()
    time.sleep(0.05)
    with pytest.raises(OSError, match="counter unreadable"):
        sampler.stop()
