"""A key that nothing would read in its context is refused: one line naming its YAML path, exit 2.

Each case sets a key where the run would silently ignore it (a request-level pool's `max_num_seqs`, a
Poisson stream's `cv`, a plan's `price_per_kwh` under an energy objective, ...). Silently ignored, the
researcher would trust numbers the setting never shaped; refused, they learn it at once and nothing is
written. `test_every_key_is_read.py` checks the other half: where a key is accepted, it changes results.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import CliRun
from hybridsim.simulator.scenario.loader import run_scenario

from hybridsim.core.errors import HybridsimError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "profiles"))
from serving_fakes import write_serving_profile  # noqa: E402

GPU = {"profile": "@serving", "count": 1, "serving": "continuous"}
SIMULATION = {
    "kind": "simulation",
    "cluster": {
        "m1": {"profile": "m1-pro/llama2-7b", "count": 2},
        "a100": {"profile": "swing-a100/llama2-7b", "count": 1},
    },
    "workload": {"dataset": "alpaca"},
    "arrival": {"process": "poisson", "rate": 0.5, "requests": 50},
    "policies": [{"policy": "round_robin"}],
    "workers": 1,
}
THRESHOLD = {
    "kind": "threshold-sweep",
    "systems": {"M1": {"profiles": ["m1-pro/llama2-7b"]}, "A100": {"profiles": ["swing-a100/llama2-7b"]}},
    "workload": {"dataset": "alpaca", "requests": 100},
    "thresholds": [16, 32],
}
PLAN = {
    "kind": "plan",
    "base": SIMULATION,
    "space": {"cluster.m1.count": [1, 2]},
    "policies": [{"policy": "all_on", "params": {"system": "a100"}}, {"policy": "round_robin"}],
    "search": {"method": "grid"},
    "execution": {"workers": 1},
}
TRACE = {"process": "trace", "trace": "@trace"}
ORACLE = {"kind": "oracle"}


def _with(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """`base` with dotted paths set (a value of None removes the key)."""
    data = copy.deepcopy(base)
    for path, value in changes.items():
        *parents, last = path.split(".")
        node: Any = data
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        if value is None:
            node.pop(last)
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return data


CASES = [
    # serving limits on a pool that serves request by request
    (
        SIMULATION,
        {"cluster.m1.max_num_seqs": 8},
        "cluster.m1.max_num_seqs: read only by a serving: continuous",
    ),
    (
        SIMULATION,
        {"cluster.m1.max_num_batched_tokens": 512},
        "cluster.m1.max_num_batched_tokens: read only by",
    ),
    (SIMULATION, {"cluster.a100.kv_capacity_tokens": 4000}, "cluster.a100.kv_capacity_tokens: read only by"),
    (SIMULATION, {"cluster.m1.chunked_prefill": True}, "cluster.m1.chunked_prefill: read only by"),
    # static-batch settings on a continuously batching pool
    (
        SIMULATION,
        {"cluster.gpu": {**GPU, "batch_runtime_growth": 0.3}},
        "cluster.gpu.batch_runtime_growth: prices",
    ),
    (
        SIMULATION,
        {"cluster.gpu": {**GPU, "batch_energy_growth": 0.0}},
        "cluster.gpu.batch_energy_growth: prices",
    ),
    (SIMULATION, {"cluster.gpu": {**GPU, "queue": "shared"}}, "cluster.gpu.queue: serving: continuous"),
    (SIMULATION, {"cluster.gpu": {**GPU, "max_batch": 2}}, "cluster.gpu.max_batch: serving: continuous"),
    # arrival keys of another process
    (SIMULATION, {"arrival.cv": 2.0}, "arrival.cv: shapes the gaps of process 'renewal' only, not 'poisson'"),
    (SIMULATION, {"arrival.amplitude": 0.9}, "arrival.amplitude: shapes the rate of process 'diurnal' only"),
    (
        SIMULATION,
        {"arrival.process": "renewal", "arrival.cv": 2, "arrival.period_s": 3600},
        "arrival.period_s:",
    ),
    (SIMULATION, {"arrival.phase_s": 60}, "arrival.phase_s: shapes the rate of process 'diurnal'"),
    (SIMULATION, {"arrival.time_scale": 2.0}, "arrival.time_scale: scales a trace's times"),
    (SIMULATION, {"arrival": {**TRACE, "rate": 2.0}}, "arrival.rate: a trace replays its own arrival times"),
    (
        SIMULATION,
        {"arrival": TRACE, "sweep": {"parameter": "arrival.rate", "values": [1.0]}},
        r"sweep\.values\.0: arrival\.rate: a trace replays",
    ),
    # predictor knobs of another kind
    (
        SIMULATION,
        {"predictor": {"noise": 0.2}},
        "predictor.noise: blurs the 'oracle' predictor's guesses only",
    ),
    (
        SIMULATION,
        {"policies.0.predictor": {"kind": "oracle", "prior_tokens": 50}},
        "policies.0.predictor.prior_tokens: is the 'bucket_mean' predictor's first guess only",
    ),
    (
        SIMULATION,
        {"predictor": ORACLE, "policies.0.predictor": {"kind": "bucket_mean"}},
        "predictor: every policy names its own predictor",
    ),
    (
        SIMULATION,
        {"policies.0.predictor": ORACLE, "sweep": {"parameter": "predictor.kind", "values": ["oracle"]}},
        "sweep.parameter: every policy names its own predictor",
    ),
    # carbon timing of a constant intensity, an SLO without a target
    (
        SIMULATION,
        {"carbon": {"g_per_kwh": 400, "period_s": 86400}},
        "carbon.period_s: places an intensity_csv",
    ),
    (
        SIMULATION,
        {"carbon": {"g_per_kwh": 400, "offset_s": 3600}},
        "carbon.offset_s: places an intensity_csv",
    ),
    (SIMULATION, {"slo": {"attainment": 0.5}}, "slo: give at least one target"),
    # counts and lengths the arrival decides
    (
        SIMULATION,
        {"arrival.requests": None, "arrival.duration_s": 100, "workload.requests": 30},
        r"workload\.requests: the arrival decides how many requests come \(duration_s\)",
    ),
    (
        SIMULATION,
        {"arrival": TRACE, "workload.requests": 30},
        r"workload\.requests: the arrival decides how many requests come \(the trace's rows\)",
    ),
    (
        SIMULATION,
        {"arrival": {**TRACE, "trace": "@tokens"}},
        "workload: the trace .* carries each request's token",
    ),
    (
        SIMULATION,
        {"arrival": {**TRACE, "trace": "@limits"}, "max_tokens": 100},
        r"max_tokens: the trace .* gives each request's limit",
    ),
    # request-level pricing where every pool batches continuously
    (
        SIMULATION,
        {"cluster": {"gpu": GPU}, "cost_model": {"method": "paper"}},
        "cost_model.method: prices request-level pools",
    ),
    (
        SIMULATION,
        {"cluster": {"gpu": GPU}, "cost_model": {"out_of_range": "error"}},
        "cost_model.out_of_range: 'error' refuses",
    ),
    # threshold-sweep keys of the other method
    (
        THRESHOLD,
        {"method": "paper", "out_of_range": "error"},
        "out_of_range: read by method: per-request only",
    ),
    (THRESHOLD, {"method": "paper", "cost_model": "paper"}, "cost_model: read by method: per-request only"),
    (
        THRESHOLD,
        {"method": "per-request", "paper_runtime": "corrected"},
        "paper_runtime: read by method: paper",
    ),
    (
        THRESHOLD,
        {"thresholds": {"start": 8, "stop": 64, "step": 8, "scale": "powers-of-two"}},
        "thresholds.step: spaces linear thresholds only",
    ),
    # plan keys of another objective, search method or seeding
    (
        PLAN,
        {"objective": {"price_per_kwh": 0.2}},
        "objective.price_per_kwh: prices the 'cost' objective only",
    ),
    (
        PLAN,
        {"objective": {"kind": "carbon", "carbon": {"g_per_kwh": 300}, "node_hour": {"a100": 1.0}}},
        "objective.node_hour: prices the 'cost' objective only; kind 'carbon'",
    ),
    (PLAN, {"search": {"method": "grid", "trials": 50}}, "search.trials: steers method optuna"),
    (PLAN, {"search": {"method": "grid", "seed": 4}}, "search.seed: steers method optuna"),
    (
        PLAN,
        {"search": {"method": "optuna", "max_grid": 10}},
        "search.max_grid: chooses between grid and optuna",
    ),
    (PLAN, {"seed": 3, "seeds": [1, 2]}, "seed: seeds: lists every seed to run"),
    (
        PLAN,
        {"base.sweep": {"parameter": "arrival.rate", "values": [1.0]}},
        "base: sweep: a plan searches its own",
    ),
    (PLAN, {"set": {"workers": 2}}, "set.workers: set by the plan itself"),
    (
        PLAN,
        {"seeds": [1, 2], "set": {"seed": 5}},
        "set.seed: the plan's seed: or seeds: list choose the seeds",
    ),
    (
        PLAN,
        {"base.predictor": ORACLE, "policies.0.predictor": ORACLE, "policies.1.predictor": ORACLE},
        r"predictor \(of the base, or set:\): every policy choice names its own predictor",
    ),
]


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    files = {
        "serving": write_serving_profile(tmp_path / "fake-serving"),
        "trace": tmp_path / "trace.csv",
        "tokens": tmp_path / "tokens.csv",
        "limits": tmp_path / "limits.csv",
    }
    files["trace"].write_text("arrival_s\n0\n1\n2\n", encoding="utf-8")
    files["tokens"].write_text("arrival_s,input_tokens,output_tokens\n0,20,30\n1,40,50\n", encoding="utf-8")
    files["limits"].write_text("arrival_s,max_tokens\n0,64\n1,128\n", encoding="utf-8")

    def resolve(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: resolve(item) for key, item in value.items()}
        if isinstance(value, list):
            return [resolve(item) for item in value]
        return str(files[value[1:]]) if isinstance(value, str) and value.startswith("@") else value

    path = tmp_path / "s.yaml"
    path.write_text(json.dumps(resolve(data)), encoding="utf-8")
    return path


@pytest.mark.parametrize(("base", "changes", "message"), CASES, ids=[case[2][:60] for case in CASES])
def test_an_unread_key_is_refused_in_one_line_and_nothing_is_written(
    tmp_path: Path, base: dict[str, Any], changes: dict[str, Any], message: str
) -> None:
    path = _write(tmp_path, _with(base, changes))
    with pytest.raises(HybridsimError, match=message) as caught:
        run_scenario(path, tmp_path / "out")
    assert "\n" not in str(caught.value) and str(caught.value).startswith(str(path))
    assert not (tmp_path / "out").exists()


def test_the_same_keys_where_they_are_read_are_accepted(tmp_path: Path) -> None:
    """The refusals above are about context: each of these keys runs where it means something."""
    data = _with(
        SIMULATION,
        {
            "cluster.gpu": {**GPU, "max_num_seqs": 8, "chunked_prefill": True, "max_num_batched_tokens": 512},
            "cluster.m1.batch_runtime_growth": 0.3,
            "arrival": {"process": "diurnal", "rate": 0.5, "requests": 50, "amplitude": 0.9, "phase_s": 60},
            "predictor": {"kind": "oracle", "noise": 0.2},
            "policies": [
                {"policy": "round_robin", "predictor": {"kind": "bucket_mean", "prior_tokens": 50}},
                {"name": "rr", "policy": "round_robin"},
            ],
            "carbon": {"g_per_kwh": 400},
            "slo": {"latency_s": 60, "attainment": 0.5},
            "cost_model": {"out_of_range": "extrapolate"},
        },
    )
    with pytest.warns(UserWarning, match="extrapolating"):  # each profile says so, the serving one too
        summary = run_scenario(_write(tmp_path, data), tmp_path / "out")
    assert summary["runs"][0]["predictor"] == {"kind": "bucket_mean", "prior_tokens": 50.0}
    # an extrapolating batching pool says so beside its numbers (it once read 'clamped' whatever was set)
    assert summary["cluster"]["gpu"]["serving_passes_out_of_range"].startswith("priced by the serving curves")


def test_the_cli_exits_2_on_an_unread_key(hybridsim: CliRun, tmp_path: Path) -> None:
    path = _write(tmp_path, _with(SIMULATION, {"cluster.m1.chunked_prefill": True}))
    result = hybridsim("run", str(path), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert f"{path}: cluster.m1.chunked_prefill: read only by a serving: continuous pool" in line
    assert not (tmp_path / "out").exists()
