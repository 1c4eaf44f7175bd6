"""Arrival streams have the rates and shapes they claim, and traces read as documented."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hybridsim.simulator.arrivals import arrival_times, read_trace

from hybridsim.core.errors import HybridsimError


def gaps(times: np.ndarray) -> np.ndarray:
    return np.diff(np.concatenate([[0.0], times]))


def test_poisson_has_its_rate_and_exponential_gaps() -> None:
    times = arrival_times("poisson", np.random.default_rng(1), rate=4.0, count=200_000)
    assert (np.diff(times) >= 0).all()
    assert 1 / gaps(times).mean() == pytest.approx(4.0, rel=0.01)
    assert gaps(times).std() / gaps(times).mean() == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("cv", [0.5, 2.0])
def test_renewal_has_its_rate_and_coefficient_of_variation(cv: float) -> None:
    times = arrival_times("renewal", np.random.default_rng(2), rate=2.0, count=200_000, cv=cv)
    assert 1 / gaps(times).mean() == pytest.approx(2.0, rel=0.02)
    assert gaps(times).std() / gaps(times).mean() == pytest.approx(cv, rel=0.03)


def test_a_rate_sweep_replays_the_same_pattern_faster() -> None:
    slow = arrival_times("poisson", np.random.default_rng(3), rate=1.0, count=100)
    fast = arrival_times("poisson", np.random.default_rng(3), rate=4.0, count=100)
    assert np.allclose(slow, 4 * fast)


def test_duration_bound_keeps_every_arrival_inside_the_window() -> None:
    times = arrival_times("poisson", np.random.default_rng(4), rate=5.0, duration_s=2000.0)
    assert times.max() <= 2000.0
    assert times.size == pytest.approx(10_000, rel=0.05)


def test_diurnal_rate_follows_the_sine_by_thinning() -> None:
    period = 1000.0
    times = arrival_times(
        "diurnal", np.random.default_rng(5), rate=10.0, duration_s=50 * period, amplitude=0.8, period_s=period
    )
    phase = (times % period) / period
    peak = np.count_nonzero((phase > 0.2) & (phase < 0.3))  # sin near +1: rate ~ 18/s
    trough = np.count_nonzero((phase > 0.7) & (phase < 0.8))  # sin near -1: rate ~ 2/s
    assert times.size / (50 * period) == pytest.approx(10.0, rel=0.02)
    assert peak / trough == pytest.approx((1 + 0.8 * 0.988) / (1 - 0.8 * 0.988), rel=0.15)


def test_negative_or_zero_rates_are_refused() -> None:
    with pytest.raises(HybridsimError, match="arrival.rate"):
        arrival_times("poisson", np.random.default_rng(0), rate=-1.0, count=10)


def test_azure_trace_layout_reads_with_its_tokens(tmp_path: Path) -> None:
    path = tmp_path / "azure.csv"
    path.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2023-11-16 18:15:48.2000000,100,20\n"
        "2023-11-16 18:15:46.6805900,374,44\n"
        "2023-11-16 18:15:50.6805900,12,300\n"
    )
    with pytest.warns(UserWarning, match="1 rows are earlier than the row before them"):
        trace = read_trace(path)
    assert np.allclose(trace.arrival_s, [0.0, 1.51941, 4.0])
    assert trace.input_tokens.tolist() == [374, 100, 12]
    assert trace.output_tokens.tolist() == [44, 20, 300]
    assert trace.max_tokens is None


def test_trace_with_seconds_and_no_tokens(tmp_path: Path) -> None:
    path = tmp_path / "times.csv"
    path.write_text("timestamp\n10.5\n12\n11\n")
    with pytest.warns(UserWarning, match="sorted by time"):
        trace = read_trace(path)
    assert trace.arrival_s.tolist() == [0.0, 0.5, 1.5]
    assert trace.input_tokens is None and trace.output_tokens is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("time,input_tokens,output_tokens\n1,2,3\n", "missing column timestamp"),
        ("timestamp,input_tokens\n1,2\n", "missing column output_tokens"),
        ("timestamp,input_tokens,output_tokens\n1,2,-3\n", "row 2: output_tokens must be an integer"),
        ("timestamp\nyesterday\n", "neither seconds nor an ISO 8601"),
        ("timestamp,input_tokens,output_tokens\n1,2,-3\n", "output_tokens must be an integer >= 1, got -3$"),
        ("timestamp\n0\ninf\n", "timestamp: row 3: inf is not a finite number of seconds"),
        ("timestamp,input_tokens,output_tokens\n0,2,3\n,2,3\n", "timestamp: row 3: empty timestamp"),
    ],
)
def test_bad_traces_say_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(HybridsimError, match=message):
        read_trace(path)
