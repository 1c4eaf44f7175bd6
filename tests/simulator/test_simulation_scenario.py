"""`kind: simulation` end to end: the files a run writes, byte-identical reruns, and one-line errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from conftest import CliRun
from hybridsim.simulator.metrics.records import PARQUET_COLUMNS
from hybridsim.simulator.report.compare import compare_runs
from hybridsim.simulator.scenario.loader import run_scenario
from matplotlib.figure import Figure

from hybridsim.core.errors import HybridsimError

BASE = {
    "kind": "simulation",
    "name": "tiny",
    "seed": 5,
    "cluster": {
        "m1": {"profile": "m1-pro/llama2-7b", "count": 6},
        "a100": {"profile": "swing-a100/llama2-7b", "count": 1, "queue": "shared"},
    },
    "cost_model": {"out_of_range": "clamp"},
    "workload": {"dataset": "alpaca"},
    "max_tokens": 256,
    "arrival": {"process": "poisson", "rate": 0.2, "requests": 600, "warmup_s": 100},
    "predictor": {"kind": "bucket_mean"},
    "policies": [
        {"name": "all-a100", "policy": "all_on", "params": {"system": "a100"}},
        {
            "name": "out-32",
            "policy": "output_threshold",
            "params": {"threshold": 32, "below": "m1", "above": "a100"},
        },
        {
            "name": "out-32-oracle",
            "policy": "output_threshold",
            "params": {"threshold": 32, "below": "m1", "above": "a100"},
            "predictor": {"kind": "oracle"},
        },
    ],
    "slo_s": 30,
    "cost": {"lam": 0.5, "reference": "a100"},
    "sweep": {"parameter": "arrival.rate", "values": [0.1, 0.4]},
    "workers": 1,
}


def write(tmp_path: Path, name: str = "s.yaml", **changes: object) -> Path:
    data = json.loads(json.dumps(BASE))
    for dotted, value in changes.items():
        node = data
        *parents, last = dotted.split("__")
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sim")
    run_scenario(write(folder), folder / "out")
    return folder / "out"


def test_a_run_writes_summary_requests_and_plots(finished: Path) -> None:
    summary = json.loads((finished / "summary.json").read_text())
    assert summary["kind"] == "simulation" and summary["headline"].startswith("tiny: arrival.rate sweep")
    assert [(run["sweep_value"], run["policy"]) for run in summary["runs"]] == [
        (rate, name) for rate in (0.1, 0.4) for name in ("all-a100", "out-32", "out-32-oracle")
    ]
    assert {"energy_vs_p99.png", "sweep.png", "utilisation.png"} <= set(summary["plots"])
    for name in summary["plots"]:
        assert (finished / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for run in summary["runs"]:
        table = pq.read_table(finished / run["requests_file"])
        assert table.column_names == list(PARQUET_COLUMNS)
        assert table.num_rows == run["requests"] == 600
        assert sum(table.column("energy_j").to_pylist()) == pytest.approx(run["energy"]["active_j"], rel=1e-9)
        assert run["energy"]["total_kwh"] == pytest.approx(run["energy"]["total_j"] / 3.6e6)
        assert 0 <= run["slo"]["attainment"] <= 1
    assert (finished / "scenario.resolved.yaml").is_file()


def test_the_oracle_gap_is_reported(finished: Path) -> None:
    gaps = json.loads((finished / "summary.json").read_text())["oracle_gap"]
    assert [(gap["point"], gap["policy"], gap["oracle_policy"]) for gap in gaps] == [
        (0, "out-32", "out-32-oracle"),
        (1, "out-32", "out-32-oracle"),
    ]
    assert all(isinstance(gap["energy_pct"], float) for gap in gaps)


def test_same_seed_same_bytes_serial_or_parallel(finished: Path, tmp_path: Path) -> None:
    run_scenario(write(tmp_path, workers=2), tmp_path / "again")
    assert files(tmp_path / "again").keys() == files(finished).keys()
    for name, content in files(finished).items():
        if name != "scenario.resolved.yaml":  # records the workers setting itself
            assert files(tmp_path / "again")[name] == content, name


def test_another_seed_gives_other_requests(finished: Path, tmp_path: Path) -> None:
    run_scenario(write(tmp_path, seed=6), tmp_path / "other")
    assert files(tmp_path / "other")["summary.json"] != files(finished)["summary.json"]


def test_a_sweep_over_a_policy_parameter_and_a_trace_with_tokens(tmp_path: Path) -> None:
    trace = tmp_path / "azure.csv"
    trace.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        + "".join(
            f"2023-11-16 18:{minute:02d}:00.0000000,{20 + minute},{10 + 7 * minute}\n" for minute in range(40)
        )
    )
    path = write(
        tmp_path,
        arrival={"process": "trace", "trace": "azure.csv"},
        workload=None,
        sweep={"parameter": "policies.out-32-oracle.params.threshold", "values": [16, 128]},
    )
    summary = run_scenario(path, tmp_path / "out")
    oracle = [run for run in summary["runs"] if run["policy"] == "out-32-oracle"]
    assert [run["systems"]["m1"]["requests"] for run in oracle] == [1, 17]  # outputs 10, 17, ..., 283
    table = pq.read_table(tmp_path / "out" / oracle[0]["requests_file"]).to_pydict()
    assert table["input_tokens"][:3] == [20, 21, 22] and table["arrival_s"][:2] == [0.0, 60.0]


def test_compare_tabulates_finished_runs(finished: Path, tmp_path: Path) -> None:
    text = compare_runs([finished], tmp_path / "cmp")
    assert "out-32-oracle" in text and "arrival.rate=0.4" in text
    assert (tmp_path / "cmp" / "compare.csv").read_text().count("\n") == 7
    assert (tmp_path / "cmp" / "compare.png").is_file()
    assert (tmp_path / "cmp" / "compare.png").stat().st_mode == (
        tmp_path / "cmp" / "compare.csv"
    ).stat().st_mode
    with pytest.raises(HybridsimError, match="no summary.json"):
        compare_runs([tmp_path], None)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"policies__0__policy": "fastest_first"}, "policies.0.policy: unknown policy 'fastest_first'"),
        ({"cluster__a100__count": 0}, "policies.0.params.system: pool 'a100' has no nodes"),
        ({"arrival__rate": -1.0}, "arrival.rate: Input should be greater than 0"),
        (
            {"sweep": {"parameter": "arrival.rate", "values": [0.1, -2]}},
            "sweep.values.1: arrival.rate: Input should",
        ),
        ({"cluster__m1__cnt": 3}, "cluster.m1.cnt: unknown field"),
        (
            {"policies__1__params": {"threshold": 32, "below": "m2", "above": "a100"}},
            "policies.1.params.below: no pool named 'm2'",
        ),
        ({"arrival": {"process": "trace", "trace": "t.csv"}, "sweep": None}, "missing column output_tokens"),
        ({"arrival__trace": "t.csv"}, "arrival: trace: is read only by process 'trace', not 'poisson'"),
        ({"workload": None, "sweep": None}, "workload: needed unless the arrival trace carries token counts"),
        ({"cost_model__out_of_range": "error", "sweep": None}, "cluster.a100: .* outside profile swing-a100"),
        (
            {"cost_model__out_of_range": "error", "sweep": None},
            r"range \(input 9-2117, .*\): \d+ with input tokens",
        ),
        (
            {"policies__1__params": {"threshold": "abc", "below": "m1", "above": "a100"}},
            "policies.1.params.threshold: Input should be a valid number.*got 'abc'",
        ),
        ({"seed": -1}, "seed: Input should be greater than or equal to 0"),
        (
            {"cluster__m1__count": 0, "cluster__a100__count": 0, "policies": [{"policy": "round_robin"}]},
            "policies.0: the cluster has no nodes",
        ),
        (
            {"sweep": {"parameter": "policies.zzz.params.threshold", "values": [8]}},
            r"s\.yaml: sweep\.parameter: .*no entry 'zzz'",
        ),
    ],
)
def test_bad_scenarios_fail_with_one_line_and_leave_nothing(
    tmp_path: Path, changes: dict, message: str
) -> None:
    (tmp_path / "t.csv").write_text("timestamp,input_tokens\n0,5\n")
    with pytest.raises(HybridsimError, match=message) as caught:
        run_scenario(write(tmp_path, **changes), tmp_path / "out")
    assert "\n" not in str(caught.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.yaml", "t.csv"]


def test_the_cli_exits_2_on_a_bad_scenario(hybridsim: CliRun, tmp_path: Path) -> None:
    path = write(tmp_path, policies__0__policy="fastest_first")
    done = hybridsim("run", str(path), "--out", str(tmp_path / "out"))
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "unknown policy" in done.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "arrival",
    [
        {"process": "renewal", "rate": 0.3, "cv": 3.0, "duration_s": 1500},
        {"process": "diurnal", "rate": 0.3, "amplitude": 0.9, "period_s": 600, "requests": 400},
    ],
)
def test_bursty_and_diurnal_arrivals_with_batching_and_a_power_cap(tmp_path: Path, arrival: dict) -> None:
    cluster = {
        "m1": {"profile": "m1-pro/llama2-7b", "count": 3, "max_batch": 4, "idle_power_w": 5.0},
        "a100": {
            "profile": "swing-a100/llama2-7b",
            "count": 1,
            "power_cap": {"runtime_factor": 1.067, "power_factor": 0.7},
        },
    }
    path = write(tmp_path, arrival=arrival, cluster=cluster, sweep=None)
    summary = run_scenario(path, tmp_path / "out")
    for run in summary["runs"]:
        assert run["requests"] == arrival.get("requests", summary["runs"][0]["requests"]) > 0
        assert run["systems"]["m1"]["energy"]["idle_j"] > 0
        assert sum(system["requests"] for system in run["systems"].values()) == run["requests"]
    if "duration_s" in arrival:
        times = pq.read_table(tmp_path / "out" / summary["runs"][0]["requests_file"]).column("arrival_s")
        assert max(times.to_pylist()) <= 1500


def test_a_warm_up_longer_than_the_arrivals_is_refused_before_any_run(tmp_path: Path) -> None:
    with pytest.raises(HybridsimError, match="arrival.warmup_s: every request arrives within"):
        run_scenario(
            write(tmp_path, arrival={"process": "poisson", "rate": 1.0, "requests": 50, "warmup_s": 10_000}),
            tmp_path / "out",
        )
    assert not (tmp_path / "out").exists()


def _figures_saved(monkeypatch: pytest.MonkeyPatch) -> list[Figure]:
    """Every figure saved from now on (saved as usual, and kept for inspection)."""
    saved: list[Figure] = []
    original = Figure.savefig

    def keep(figure: Figure, *args: object, **kwargs: object) -> None:
        saved.append(figure)
        original(figure, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    return saved


def test_compare_colours_a_policy_alike_in_every_run_with_the_legend_off_the_data(
    finished: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(finished, tmp_path / "second")
    saved = _figures_saved(monkeypatch)
    compare_runs([finished, tmp_path / "second"], tmp_path / "cmp")
    axis = saved[-1].axes[0]
    colours = {}
    for line in axis.lines:
        policy = line.get_label().split(": ", 1)[1]
        assert colours.setdefault(policy, line.get_color()) == line.get_color(), policy
    assert len(set(colours.values())) == len(colours) == 3
    assert axis.get_legend().get_bbox_to_anchor().x0 >= axis.get_window_extent().x1  # beside the axes


def test_sweep_plots_name_units_and_label_the_ends_of_each_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved = _figures_saved(monkeypatch)
    run_scenario(write(tmp_path), tmp_path / "out")
    energy_axis = saved[0].axes[0]
    assert {text.get_text() for text in energy_axis.texts} == {"0.1", "0.4"}
    assert "arrival.rate" in energy_axis.get_title()
    assert saved[1].axes[0].get_xlabel() == "arrival.rate (req/s)"


def test_the_paper_fits_negative_costs_are_counted_not_hidden(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        cost_model={"method": "paper", "out_of_range": "clamp"},
        sweep=None,
        arrival={"process": "poisson", "rate": 0.2, "requests": 3000},
    )
    with pytest.warns(UserWarning, match="'paper' cost model"):
        summary = run_scenario(path, tmp_path / "out")
    run = next(entry for entry in summary["runs"] if entry["policy"] == "all-a100")
    records = pq.read_table(tmp_path / "out" / run["requests_file"]).to_pandas()
    a100 = run["systems"]["a100"]
    assert a100["negative_energy_requests"] == int((records["energy_j"] < 0).sum()) > 0
    assert a100["zero_runtime_requests"] == int((records["service_s"] <= 0).sum())
