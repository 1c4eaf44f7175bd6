"""What an operator reads first stays readable: the headline, the compare table, the energy-vs-p99 plot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hybridsim.simulator.metrics.summary import headline
from hybridsim.simulator.report import simulation_plots
from hybridsim.simulator.report.compare import TERMINAL_WIDTH, compare_runs, energy_axis
from matplotlib.backends.backend_agg import FigureCanvasAgg
from saved_figures import saved_figures


def fake_run(
    policy: str, kwh: float, p99: float, *, cls: str = "x", oracle: bool = False, **extra: Any
) -> dict:
    return {
        "policy": policy,
        "policy_class": cls,
        "params": {},
        "predictor": {"kind": "oracle"} if oracle else {"kind": "bucket_mean"},
        "requests": 1000,
        "energy": {"total_kwh": kwh, "total_j": kwh * 3.6e6, "idle_j": 0.1 * kwh * 3.6e6},
        "energy_per_request_j": kwh * 3600.0,
        "latency_s": {"p50": p99 / 3, "p99": p99},
        "wait_s": {"p99": p99 / 2},
        "throughput_rps": 2.5,
        "systems": {"a100": {"utilisation": 0.8}, "m1": {"utilisation": 0.1}},
        "slo": None,
        "cost_u": {"value": 1.2},
        "saturated": extra.pop("saturated", []),
        "outside_profile_range": extra.pop("outside", 0),
        **extra,
    }


RUNS = [
    fake_run("all-a100", 4.603, 14.6, cls="all_on"),
    fake_run("all-m1", 7.58, 8251.0, cls="all_on", saturated=["m1"], outside=12),
    fake_run("energy-under-slo-60-oracle-with-a-very-long-name", 4.590, 12.3, oracle=True),
    fake_run("cost-greedy", 4.603, 14.6),
    fake_run("output-32", 4.607, 14.6),
    fake_run("join-shortest-queue", 6.03, 183.0),
]


def summary(runs: list[dict]) -> dict:
    return {
        "kind": "simulation",
        "scenario": "default",
        "sweep": None,
        "cluster": {"a100": {}, "m1": {}},
        "cost_model": {
            "outside_profile_range": "priced at the nearest measured length (out_of_range: clamp)"
        },
        "runs": runs,
    }


def test_the_headline_names_the_baselines_and_explains_its_words() -> None:
    text = headline(summary(RUNS))
    assert text.startswith("default: baselines (every request on one system): all-a100 4.603 kWh, p99 14.6 s")
    assert "all-m1 7.580 kWh, p99 8,251 s" in text
    assert "lowest energy: energy-under-slo-60-oracle-with-a-very-long-name 4.590 kWh" in text
    assert "-0.3% vs all-a100" in text and "saturated: all-m1 (m1)" in text
    assert "up to 12 of 1,000 requests" in text and "nearest measured length" in text
    assert "oracle: routed knowing each answer's true length" in text and "saturated: a pool busy 95%" in text


def test_without_oracles_or_saturation_the_glossary_stays_out() -> None:
    text = headline(summary([fake_run("all-a100", 1.0, 2.0, cls="all_on"), fake_run("b", 0.9, 3.0)]))
    assert "oracle:" not in text and "saturated" not in text and "-10.0% vs all-a100" in text


def test_a_capacity_sweep_headline_lists_where_pools_saturate_and_where_slos_hold() -> None:
    met = {"all_met": True}
    missed = {"all_met": False}
    runs = [
        fake_run("jsq", 5.6, 900.0, saturated=["gpu"], sweep_value=1, slos=missed),
        fake_run("jsq", 5.6, 600.0, saturated=["gpu"], sweep_value=2, slos=missed),
        fake_run("jsq", 7.0, 68.0, sweep_value=3, slos=missed),
        fake_run("jsq", 12.9, 36.0, sweep_value=6, slos=met),
        fake_run("rr", 5.0, 10.0, sweep_value=1.0),
    ]
    swept = summary(runs) | {"sweep": {"parameter": "cluster.gpu.count", "values": [1, 2, 3, 6]}}
    assert headline(swept) == (
        "default: cluster.gpu.count sweep; jsq: gpu saturated at 1, 2, SLOs met at 6; rr: none saturated"
    )


def test_compare_prints_a_table_narrower_than_120_characters_and_a_short_legend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("first-run-with-a-long-folder-name", "second"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "summary.json").write_text(json.dumps(summary(RUNS)))
    text = compare_runs(
        [tmp_path / "first-run-with-a-long-folder-name", tmp_path / "second"], tmp_path / "cmp"
    )
    assert max(len(line) for line in text.splitlines()) <= TERMINAL_WIDTH
    assert "compare.csv" in text.splitlines()[-1]
    full = (tmp_path / "cmp" / "compare.csv").read_text()
    assert "energy-under-slo-60-oracle-with-a-very-long-name" in full  # the CSV keeps every name whole


def test_compare_shortens_names_but_never_prints_two_alike(tmp_path: Path) -> None:
    """Shortened names keep their ends (`...-oracle`, `...-seed-2-long`) and stay apart where ends agree."""
    policies = [
        "energy-under-slo-60",
        "energy-under-slo-60-oracle",
        "cost-greedy-oracle",
        "cost-greedy-normalised-oracle",
        "join-shortest-queue",
    ]
    runs = [fake_run(name, 4.6 + k / 100, 12.0 + k) for k, name in enumerate(policies)]
    folders = ["results-2026-12-01-seed-1-long", "results-2026-12-01-seed-2-long"]
    for name in folders:
        (tmp_path / name).mkdir()
        (tmp_path / name / "summary.json").write_text(json.dumps(summary(runs)))
    text = compare_runs([tmp_path / name for name in folders], None)
    rows = [line.split()[:2] for line in text.splitlines()[1:-1]]
    assert any("~" in run or "~" in policy for run, policy in rows)  # the names were shortened
    assert len({tuple(row) for row in rows}) == len(policies) * len(folders)
    shown = [policy for _, policy in rows]
    assert [name.endswith("oracle") for name in shown] == [name.endswith("oracle") for name in policies * 2]


def test_compare_shows_a_batching_runs_ttft_tbt_slos(tmp_path: Path) -> None:
    """Runs with `slo:` targets (TTFT, TBT, latency) and no `slo_s`: the SLO column is the worst target's
    attainment, and the CSV keeps each target's and whether all were met."""
    slos = {"all_met": False, "attainment": {"ttft_s": 0.95, "tbt_s": 0.8, "latency_s": 0.99}}
    (tmp_path / "batching").mkdir()
    runs = [fake_run("jsq", 1.0, 10.0, slos=slos)]
    (tmp_path / "batching" / "summary.json").write_text(json.dumps(summary(runs)))
    compare_runs([tmp_path / "batching"], tmp_path / "cmp")
    row = pd.read_csv(tmp_path / "cmp" / "compare.csv").iloc[0]
    assert row["slo_attainment"] == 0.8 and not row["slos_all_met"]
    assert (row["slo_attainment_ttft_s"], row["slo_attainment_tbt_s"], row["slo_attainment_latency_s"]) == (
        0.95,
        0.8,
        0.99,
    )


def test_close_policies_get_a_zoomed_panel_that_names_each_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved = saved_figures(monkeypatch, simulation_plots)
    simulation_plots.energy_vs_p99(RUNS, tmp_path)
    simulation_plots.energy_vs_p99(RUNS[:2], tmp_path)
    zoomed = saved[0].axes[1]
    named = {text.get_text().split("  ")[0] for text in zoomed.texts}
    assert named == {
        "all-a100",
        "energy-under-slo-60-oracle-with-a-very-long-name",
        "cost-greedy",
        "output-32",
    }
    assert len(saved[1].axes) == 1  # two far-apart policies: one panel is enough
    assert "energy-under-slo-60-oracle-with-a-very-long-name  4.590 kWh, 12.3 s" in {
        text.get_text() for text in zoomed.texts
    }  # every label to the same digits: 4.590 beside 4.603


def test_many_policies_leave_the_points_uncovered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a zoomed corner and many policies (policy-comparison has 17) the legend lies outside the panel."""
    saved = saved_figures(monkeypatch, simulation_plots)
    many = RUNS + [fake_run(f"policy-{k}", 5.5 + 0.1 * k, 50.0 * (k + 1)) for k in range(12)]
    simulation_plots.energy_vs_p99(many, tmp_path)
    figure = saved[0]
    renderer = FigureCanvasAgg(figure).get_renderer()  # _save closed the figure: draw it again
    panel = figure.axes[0]
    legend = panel.get_legend()
    assert len(figure.axes) == 2 and len(legend.get_texts()) == len(many)
    assert not legend.get_window_extent(renderer).overlaps(panel.get_window_extent(renderer))


def test_a_threshold_plot_names_the_system_each_side_of_t_goes_to() -> None:
    import numpy as np
    from hybridsim.simulator.report.threshold_plots import _one_plot

    baselines = {"M1-Pro": 0.79, "Swing AMD+A100": 0.81}
    figure = _one_plot(np.array([8, 16, 32]), np.array([0.8, 0.77, 0.75]), baselines, 2, "kWh", "t", "input")
    label = figure.axes[0].get_xlabel()
    assert label == "threshold T (to M1-Pro when input tokens m <= T, else to Swing AMD+A100)"


def test_compare_plots_energy_per_request_when_the_runs_served_different_counts() -> None:
    """Total kWh of a 40,000-request run beside a 10,000-request one would read four times dearer."""
    same = pd.DataFrame({"requests": [1000, 1000], "energy_kwh": [1.0, 2.0], "j_per_request": [3.6, 7.2]})
    assert energy_axis(same) == ("energy_kwh", "total energy, active + idle (kWh)")
    mixed = same.assign(requests=[40_000, 10_000])
    column, label = energy_axis(mixed)
    assert column == "j_per_request" and "per request" in label and "(J" in label
