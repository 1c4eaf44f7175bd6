"""Carbon: each joule priced at the grid intensity when it was spent; constants
reduce to energy x intensity.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml
from hybridsim.simulator.metrics.carbon import GridIntensity, emissions, read_intensity
from hybridsim.simulator.scenario.loader import run_scenario

from hybridsim.core.errors import HybridsimError

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "scenarios" / "grid" / "synthetic-diurnal-intensity.csv"


def step(period: float | None = None, offset: float = 0.0) -> GridIntensity:
    return GridIntensity(np.array([0.0, 20.0]), np.array([100.0, 300.0]), period, offset, "test")


def test_cumulative_intensity_is_the_integral_of_the_steps() -> None:
    series = step()
    assert series.cumulative(np.array([0.0, 10.0, 20.0, 30.0])) == pytest.approx([0, 1000, 2000, 5000])
    daily = step(period=40.0, offset=30.0)  # run time 0 is series time 30 (value 300); 10 later it wraps
    assert daily.cumulative(np.array([10.0, 30.0, 50.0])) == pytest.approx([3000, 3000 + 2000, 5000 + 6000])
    assert daily.at(np.array([0.0, 10.0, 35.0])) == pytest.approx([300, 100, 300])


def test_emissions_of_a_hand_computed_run() -> None:
    table = {
        "start_s": np.array([10.0]),
        "finish_s": np.array([30.0]),
        "energy_j": np.array([3.6e6]),  # 1 kWh over [10, 30]: half at 100 g/kWh, half at 300
        "node": np.array([0]),
        "system_code": np.array([0]),
    }
    result = SimpleNamespace(
        table=table,
        systems=("gpu",),
        node_system=np.array([0]),
        idle_power_w=np.array([10.0]),
        ledger={"busy_s": np.array([20.0])},
        horizon_s=100.0,
        idle_j=np.array([10.0 * 80.0]),
    )
    found = emissions(result, step())
    assert found["active_g"] == pytest.approx(200.0)
    # idle: 10 s at 100 g/kWh and 70 s at 300 g/kWh, at 10 W
    assert found["idle_g"] == pytest.approx(10.0 * (10 * 100 + 70 * 300) / 3.6e6)
    constant = emissions(result, GridIntensity.constant(250.0))
    assert constant["total_g"] == pytest.approx(250.0 * (3.6e6 + 800.0) / 3.6e6)
    assert constant["mean_g_per_kwh"] == pytest.approx(250.0)


def test_shipped_synthetic_curve_matches_its_documented_formula() -> None:
    series = read_intensity(SHIPPED, period_s=86400)
    assert series.times_s.tolist() == [3600.0 * h for h in range(24)]
    for h, value in enumerate(series.values):
        formula = (
            400
            - 150 * max(0.0, math.sin(math.pi * (h - 6) / 12))
            + 30 * math.cos(2 * math.pi * (h - 19) / 24)
        )
        assert value == pytest.approx(round(formula, 1))
    assert "SYNTHETIC" in SHIPPED.read_text(encoding="utf-8").splitlines()[0]


def test_bad_intensity_files_fail_on_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("time_s,g_per_kwh\n0,100\n0,200\n", encoding="utf-8")
    with pytest.raises(HybridsimError, match="must increase strictly"):
        read_intensity(bad)
    bad.write_text("hour,g\n0,100\n", encoding="utf-8")
    with pytest.raises(HybridsimError, match="needs columns time_s,g_per_kwh"):
        read_intensity(bad)


def test_simulation_summary_reports_carbon_per_policy(tmp_path: Path) -> None:
    scenario = {
        "kind": "simulation",
        "seed": 3,
        "cluster": {
            "m1": {"profile": "m1-pro/llama2-7b", "count": 8},
            "a100": {"profile": "swing-a100/llama2-7b", "count": 2, "queue": "shared"},
        },
        "cost_model": {"method": "interpolated", "out_of_range": "clamp"},
        "workload": {"dataset": "alpaca"},
        "arrival": {"process": "poisson", "rate": 1.0, "requests": 100},
        "policies": [
            {"name": "all-a100", "policy": "all_on", "params": {"system": "a100"}},
            {"name": "rr", "policy": "round_robin"},
        ],
        "carbon": {"intensity_csv": str(SHIPPED), "period_s": 86400, "offset_s": 43200},
        "write_requests": False,
        "workers": 1,
    }
    path = tmp_path / "sim.yaml"
    path.write_text(yaml.safe_dump(scenario), encoding="utf-8")
    summary = run_scenario(path, tmp_path / "out")
    for run in summary["runs"]:
        carbon = run["carbon"]
        assert carbon["total_g"] == pytest.approx(sum(s["total_g"] for s in carbon["systems"].values()))
        # near noon the synthetic curve lies between 240 and 260 g/kWh for the ~2 minutes simulated
        assert 240 <= carbon["mean_g_per_kwh"] <= 260
        assert carbon["total_kg"] == pytest.approx(
            run["energy"]["total_kwh"] * carbon["mean_g_per_kwh"] / 1000
        )
