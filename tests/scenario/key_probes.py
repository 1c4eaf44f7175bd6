"""The probes of `test_every_key_is_read.py`: for each schema key, a tiny scenario and a change to it.

A probe names a base scenario (`request`: two request-level pools; `continuous`: one batching GPU; `dual`: a
profile with request-level and serving tables; `threshold`; `plan`), a `setup` that puts the key in a
context where it is read (a renewal stream for `cv`), and the `change` whose effect the test asks to see.
Input files are named `@name` and written by `write_inputs`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hybridsim.simulator.profiles.registry import load_profile

from hybridsim.core.profile_io import save_profile_dir

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "profiles"))
from serving_fakes import serving_profile  # noqa: E402

TOKENIZER = (
    Path(__file__).resolve().parents[3] / "shared" / "data" / "tokenizers" / "llama2" / "tokenizer.model"
)


@dataclass(frozen=True)
class Probe:
    """Run `base` with `setup`, then also with `change`; the results must differ. Paths are dotted (a
    tuple where a key itself holds dots); a value of None removes the key."""

    base: str
    change: dict[Any, Any]
    setup: dict[Any, Any] = field(default_factory=dict)


A100_POWER_CAP = {"cluster.a100.power_cap": {"runtime_factor": 1.0, "power_factor": 1.0}}
DIURNAL = {"arrival.process": "diurnal", "arrival.period_s": 600.0}
TRACE = {"arrival": {"process": "trace", "trace": "@trace-3s.csv"}}
CARBON_CSV = {"carbon": {"intensity_csv": "@grid-a.csv"}}
PLAN_CARBON_CSV = {"objective": {"kind": "carbon", "carbon": {"intensity_csv": "@grid-a.csv"}}}
OPTUNA = {"search": {"method": "optuna", "trials": 3, "batch": 3}}
OWN_ORACLE = {"predictor": None, "policies.0.predictor": {"kind": "oracle"}}
OUTPUT_ROUTER = {"policies.1.policy": "output_threshold"}

SIMULATION_PROBES = {
    "seed": Probe("request", {"seed": 2}),
    "cluster.*.profile": Probe("request", {"cluster.a100.profile": "swing-a100/mistral-7b"}),
    "cluster.*.count": Probe("request", {"cluster.m1.count": 5}),
    "cluster.*.idle_power_w": Probe("request", {"cluster.a100.idle_power_w": 500.0}),
    "cluster.*.queue": Probe("request", {"cluster.m1.queue": "shared"}),
    "cluster.*.max_batch": Probe("request", {"cluster.m1.max_batch": 4}),
    "cluster.*.batch_runtime_growth": Probe(
        "request", {"cluster.m1.batch_runtime_growth": 0.5}, {"cluster.m1.max_batch": 4}
    ),
    "cluster.*.batch_energy_growth": Probe(
        "request", {"cluster.m1.batch_energy_growth": 0.5}, {"cluster.m1.max_batch": 4}
    ),
    "cluster.*.power_cap.runtime_factor": Probe(
        "request", {"cluster.a100.power_cap.runtime_factor": 1.3}, A100_POWER_CAP
    ),
    "cluster.*.power_cap.power_factor": Probe(
        "request", {"cluster.a100.power_cap.power_factor": 0.7}, A100_POWER_CAP
    ),
    "cluster.*.serving": Probe("dual", {"cluster.gpu.serving": "continuous"}),
    "cluster.*.max_num_seqs": Probe("continuous", {"cluster.gpu.max_num_seqs": 2}),
    "cluster.*.max_num_batched_tokens": Probe(
        "continuous",
        {"cluster.gpu.max_num_batched_tokens": 200},
        {"arrival.rate": 1000.0, "cluster.gpu.max_num_seqs": 128},
    ),
    "cluster.*.kv_capacity_tokens": Probe("continuous", {"cluster.gpu.kv_capacity_tokens": 1500}),
    "cluster.*.chunked_prefill": Probe("continuous", {"cluster.gpu.chunked_prefill": True}),
    "cost_model.method": Probe("request", {"cost_model.method": "paper"}),
    "cost_model.out_of_range": Probe("request", {"cost_model.out_of_range": "extrapolate"}),
    "workload.dataset": Probe("request", {"workload.dataset": "alpaca-gpt4-sample"}),
    "workload.csv": Probe(
        "request", {"workload.csv": "@lengths-b.csv"}, {"workload": {"csv": "@lengths-a.csv"}}
    ),
    "workload.jsonl": Probe(
        "request",
        {"workload.jsonl": "@prompts-b.jsonl"},
        {"workload": {"jsonl": "@prompts-a.jsonl", "tokenizer": str(TOKENIZER)}},
    ),
    "workload.requests": Probe(
        "request", {"workload.requests": 100}, {"arrival.requests": None, "workload.requests": 150}
    ),
    "workload.max_input_tokens": Probe("request", {"workload.max_input_tokens": 16}),
    "workload.max_output_tokens": Probe("request", {"workload.max_output_tokens": 32}),
    "max_tokens": Probe("request", {"max_tokens": 64}),
    "arrival.process": Probe("request", {"arrival.process": "diurnal"}),
    "arrival.rate": Probe("request", {"arrival.rate": 0.6}),
    "arrival.cv": Probe("request", {"arrival.cv": 3.0}, {"arrival.process": "renewal", "arrival.cv": 1.0}),
    "arrival.amplitude": Probe("request", {"arrival.amplitude": 1.0}, DIURNAL),
    "arrival.period_s": Probe("request", {"arrival.period_s": 300.0}, DIURNAL),
    "arrival.phase_s": Probe("request", {"arrival.phase_s": 150.0}, DIURNAL),
    "arrival.trace": Probe("request", {"arrival.trace": "@trace-5s.csv"}, TRACE),
    "arrival.time_scale": Probe("request", {"arrival.time_scale": 2.0}, TRACE),
    "arrival.requests": Probe("request", {"arrival.requests": 100}),
    "arrival.duration_s": Probe(
        "request", {"arrival.duration_s": 300.0}, {"arrival.requests": None, "arrival.duration_s": 500.0}
    ),
    "arrival.warmup_s": Probe("request", {"arrival.warmup_s": 100.0}),
    "predictor.kind": Probe("request", {"predictor.kind": "max_tokens"}),
    "predictor.noise": Probe("request", {"predictor.noise": 0.5}),
    "predictor.prior_tokens": Probe(
        "request", {"predictor.prior_tokens": 8}, {"predictor.kind": "bucket_mean"}
    ),
    "policies.*.name": Probe("request", {"policies.0.name": "renamed"}),
    "policies.*.policy": Probe("request", {"policies.0.policy": "input_threshold"}),
    "policies.*.params": Probe("request", {"policies.0.params.threshold": 16}),
    "policies.*.predictor.kind": Probe("request", {"policies.0.predictor.kind": "max_tokens"}, OWN_ORACLE),
    "policies.*.predictor.noise": Probe("request", {"policies.0.predictor.noise": 0.5}, OWN_ORACLE),
    "policies.*.predictor.prior_tokens": Probe(
        "request",
        {"policies.0.predictor.prior_tokens": 8},
        {"predictor": None, "policies.0.predictor": {"kind": "bucket_mean"}},
    ),
    "slo_s": Probe("request", {"slo_s": 30.0}),
    "slo.ttft_s": Probe("request", {"slo.ttft_s": 5.0}, {"slo": {"ttft_s": 1000.0}}),
    "slo.tbt_s": Probe("continuous", {"slo.tbt_s": 0.01}, {"slo": {"tbt_s": 100.0}}),
    "slo.latency_s": Probe("request", {"slo.latency_s": 5.0}, {"slo": {"latency_s": 1000.0}}),
    "slo.attainment": Probe("request", {"slo.attainment": 0.05}, {"slo": {"latency_s": 5.0}}),
    "cost.lam": Probe("request", {"cost.lam": 0.9}),
    "cost.reference": Probe("request", {"cost.reference": "a100"}),
    "carbon.g_per_kwh": Probe("request", {"carbon.g_per_kwh": 100.0}, {"carbon": {"g_per_kwh": 400.0}}),
    "carbon.intensity_csv": Probe("request", {"carbon.intensity_csv": "@grid-b.csv"}, CARBON_CSV),
    "carbon.period_s": Probe("request", {"carbon.period_s": 500.0}, CARBON_CSV),
    "carbon.offset_s": Probe("request", {"carbon.offset_s": 200.0}, CARBON_CSV),
    "sweep.parameter": Probe(
        "request",
        {"sweep.parameter": "cluster.a100.count"},
        {"sweep": {"parameter": "cluster.m1.count", "values": [2]}},
    ),
    "sweep.values": Probe(
        "request", {"sweep.values": [4]}, {"sweep": {"parameter": "cluster.m1.count", "values": [2]}}
    ),
    "write_requests": Probe("request", {"write_requests": False}),
}

THRESHOLD_PROBES = {
    "seed": Probe("threshold", {"seed": 1}),
    "systems.*.profiles": Probe("threshold", {"systems.A100.profiles": ["swing-a100/mistral-7b"]}),
    "workload.dataset": Probe("threshold", {"workload.dataset": "alpaca-gpt4-sample"}),
    "workload.csv": Probe(
        "threshold",
        {"workload.csv": "@lengths-b.csv"},
        {"workload": {"csv": "@lengths-a.csv", "requests": 500}},
    ),
    "workload.jsonl": Probe(
        "threshold",
        {"workload.jsonl": "@prompts-b.jsonl"},
        {"workload": {"jsonl": "@prompts-a.jsonl", "tokenizer": str(TOKENIZER)}},
    ),
    "workload.requests": Probe("threshold", {"workload.requests": 300}),
    "workload.max_input_tokens": Probe("threshold", {"workload.max_input_tokens": 16}),
    "workload.max_output_tokens": Probe("threshold", {"workload.max_output_tokens": 32}),
    "method": Probe("threshold", {"method": "paper"}),
    "rule": Probe("threshold", {"rule": "output"}),
    "thresholds": Probe("threshold", {"thresholds": [8, 128]}),
    "thresholds.start": Probe(
        "threshold", {"thresholds.start": 16}, {"thresholds": {"start": 8, "stop": 64}}
    ),
    "thresholds.stop": Probe("threshold", {"thresholds.stop": 128}, {"thresholds": {"start": 8, "stop": 64}}),
    "thresholds.step": Probe("threshold", {"thresholds.step": 8}, {"thresholds": {"start": 8, "stop": 64}}),
    "thresholds.scale": Probe(
        "threshold", {"thresholds.scale": "powers-of-two"}, {"thresholds": {"start": 8, "stop": 64}}
    ),
    "lam": Probe("threshold", {"lam": 0.05}),
    "cost_model": Probe("threshold", {"cost_model": "paper"}),
    "out_of_range": Probe("threshold", {"out_of_range": "extrapolate"}),
    "paper_runtime": Probe("threshold", {"paper_runtime": "corrected"}, {"method": "paper"}),
    "artifact_output_bug": Probe(
        "threshold", {"artifact_output_bug": True}, {"method": "paper", "rule": "output"}
    ),
}

PLAN_PROBES = {
    "base": Probe("plan", {"base.arrival.rate": 0.6}),
    "set": Probe("plan", {"set": {"arrival.requests": 40}}),
    "space": Probe("plan", {"space": {"cluster.m1.count": [1, 3]}}),
    "space.*.from": Probe(
        "plan",
        {("space", "cluster.m1.count", "from"): 2},
        {"space": {"cluster.m1.count": {"from": 1, "to": 3}}},
    ),
    "space.*.to": Probe(
        "plan",
        {("space", "cluster.m1.count", "to"): 2},
        {"space": {"cluster.m1.count": {"from": 1, "to": 3}}},
    ),
    "space.*.step": Probe(
        "plan",
        {("space", "cluster.m1.count", "step"): 2},
        {"space": {"cluster.m1.count": {"from": 1, "to": 3}}},
    ),
    "policies.*.name": Probe("plan", {"policies.0.name": "gpu-only"}),
    "policies.*.policy": Probe("plan", {"policies.1.policy": "output_threshold"}),
    "policies.*.params": Probe("plan", {"policies.0.params.system": "m1"}),
    "policies.*.grid": Probe("plan", {"policies.1.grid.threshold": [64]}),
    "policies.*.predictor.kind": Probe(
        "plan", {"policies.1.predictor": {"kind": "max_tokens"}}, OUTPUT_ROUTER
    ),
    "policies.*.predictor.noise": Probe(
        "plan",
        {"policies.1.predictor.noise": 0.5},
        {**OUTPUT_ROUTER, "policies.1.predictor": {"kind": "oracle"}},
    ),
    "policies.*.predictor.prior_tokens": Probe(
        "plan",
        {"policies.1.predictor.prior_tokens": 8},
        {**OUTPUT_ROUTER, "policies.1.predictor": {"kind": "bucket_mean"}},
    ),
    "seed": Probe("plan", {"seed": 5}),
    "seeds": Probe("plan", {"seeds": [7]}),
    "objective.kind": Probe("plan", {"objective.kind": "cost", "objective.price_per_kwh": 2.0}),
    "objective.price_per_kwh": Probe(
        "plan", {"objective.price_per_kwh": 2.0}, {"objective": {"kind": "cost", "price_per_kwh": 1.0}}
    ),
    "objective.node_hour": Probe(
        "plan", {"objective.node_hour": {"a100": 1.0}}, {"objective": {"kind": "cost", "price_per_kwh": 1.0}}
    ),
    "objective.carbon.g_per_kwh": Probe(
        "plan",
        {"objective.carbon.g_per_kwh": 100.0},
        {"objective": {"kind": "carbon", "carbon": {"g_per_kwh": 400}}},
    ),
    "objective.carbon.intensity_csv": Probe(
        "plan", {"objective.carbon.intensity_csv": "@grid-b.csv"}, PLAN_CARBON_CSV
    ),
    "objective.carbon.period_s": Probe("plan", {"objective.carbon.period_s": 500.0}, PLAN_CARBON_CSV),
    "objective.carbon.offset_s": Probe("plan", {"objective.carbon.offset_s": 200.0}, PLAN_CARBON_CSV),
    "constraints.*.metric": Probe(
        "plan", {"constraints.0.metric": "latency_s.p50"}, {"constraints.0.max": 15.0}
    ),
    "constraints.*.max": Probe("plan", {"constraints.0.max": 1.0}),
    "constraints.*.min": Probe("plan", {"constraints.0.min": 1e9}),
    "no_saturation": Probe("plan", {"no_saturation": False}),
    "pareto_metric": Probe("plan", {"pareto_metric": "latency_s.mean"}),
    "search.method": Probe("plan", {"search.method": "optuna", "search.trials": 2}),
    "search.trials": Probe("plan", {"search.trials": 1}, OPTUNA),
    # Optuna's sampler draws its first 10 candidates at random whatever the batch; past them a batch of 1
    # proposes from every result so far, a batch of 12 from none
    "search.batch": Probe(
        "plan",
        {"search.batch": 1},
        {
            "space": {"cluster.m1.count": [1, 2, 3, 4, 5, 6]},
            "search": {"method": "optuna", "trials": 12, "batch": 12},
        },
    ),
    "search.seed": Probe("plan", {"search.seed": 1}, OPTUNA),
    "search.max_grid": Probe("plan", {"search.max_grid": 2}, {"search": {"method": "auto", "trials": 2}}),
}

PROBES = {"simulation": SIMULATION_PROBES, "threshold-sweep": THRESHOLD_PROBES, "plan": PLAN_PROBES}


def write_inputs(folder: Path) -> dict[str, Path]:
    """The input files probes refer to as `@name`."""
    folder.mkdir(parents=True, exist_ok=True)
    texts = {
        "trace-3s.csv": "arrival_s\n" + "".join(f"{3 * k}\n" for k in range(150)),
        "trace-5s.csv": "arrival_s\n" + "".join(f"{5 * k}\n" for k in range(150)),
        "lengths-a.csv": "input_tokens,output_tokens,count\n12,40,3\n40,200,1\n",
        "lengths-b.csv": "input_tokens,output_tokens,count\n30,20,1\n60,120,2\n",
        "prompts-a.jsonl": '{"instruction": "Say hello.", "output": "Hello there, friend."}\n'
        '{"instruction": "Count to five in words, slowly.", "output": "One. Two. Three. Four. Five."}\n',
        "prompts-b.jsonl": '{"instruction": "Write a very long and detailed essay about the history of tea '
        'across the world.", "output": "Tea began in China. It spread along trade routes to India, to Japan '
        'and to Europe, where it became a daily habit and an industry."}\n',
        "grid-a.csv": "time_s,g_per_kwh\n0,100\n150,600\n400,50\n",
        "grid-b.csv": "time_s,g_per_kwh\n0,700\n200,20\n",
    }
    paths = {}
    for name, text in texts.items():
        (folder / name).write_text(text, encoding="utf-8")
        paths[name] = folder / name
    profile = load_profile("m1-pro/llama2-7b", None)
    save_profile_dir(serving_profile("dual", points=profile.points), folder / "dual")
    save_profile_dir(serving_profile("fake-serving"), folder / "fake-serving")
    paths["dual"], paths["fake-serving"] = folder / "dual", folder / "fake-serving"
    return paths


def bases(files: dict[str, Path]) -> dict[str, dict[str, Any]]:
    request = {
        "kind": "simulation",
        "seed": 1,
        "cluster": {
            "m1": {"profile": "m1-pro/llama2-7b", "count": 3},
            "a100": {"profile": "swing-a100/llama2-7b", "count": 1},
        },
        "workload": {"dataset": "alpaca"},
        "max_tokens": 256,
        "arrival": {"process": "poisson", "rate": 0.3, "requests": 150},
        "predictor": {"kind": "oracle"},
        "policies": [
            {"policy": "output_threshold", "params": {"threshold": 64, "below": "m1", "above": "a100"}}
        ],
        "workers": 1,
    }
    serving = {"profile": str(files["fake-serving"]), "count": 1, "serving": "continuous", "max_num_seqs": 16}
    continuous = {
        **request,
        "cluster": {"gpu": serving},
        "workload": {"dataset": "alpaca", "max_input_tokens": 200},
        "arrival": {"process": "poisson", "rate": 10.0, "requests": 150},
        "policies": [{"policy": "all_on", "params": {"system": "gpu"}}],
    }
    dual = {
        **continuous,
        "cluster": {"gpu": {"profile": str(files["dual"]), "count": 1, "idle_power_w": 60.0}},
        "arrival": {"process": "poisson", "rate": 0.05, "requests": 60},
    }
    threshold = {
        "kind": "threshold-sweep",
        "systems": {"M1": {"profiles": ["m1-pro/llama2-7b"]}, "A100": {"profiles": ["swing-a100/llama2-7b"]}},
        "workload": {"dataset": "alpaca", "requests": 500},
        "method": "per-request",
        "thresholds": [8, 16, 32, 64],
    }
    plan_base = {
        **request,
        "cluster": {
            "m1": {"profile": "m1-pro/llama2-7b", "count": 2},
            "a100": {"profile": "swing-a100/llama2-7b", "count": 1},
        },
        "arrival": {"process": "poisson", "rate": 0.2, "requests": 60},
    }
    plan = {
        "kind": "plan",
        "base": plan_base,
        "space": {"cluster.m1.count": [1, 2]},
        "policies": [
            {"name": "a100", "policy": "all_on", "params": {"system": "a100"}},
            {
                "name": "split",
                "policy": "input_threshold",
                "params": {"below": "m1", "above": "a100"},
                "grid": {"threshold": [16]},
            },
        ],
        "constraints": [{"metric": "latency_s.p99", "max": 1e6}],
        "search": {"method": "grid"},
        "execution": {"workers": 1},
    }
    return {"request": request, "continuous": continuous, "dual": dual, "threshold": threshold, "plan": plan}
