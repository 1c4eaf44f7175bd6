"""`kind: simulation`: a hybrid datacenter under load, one routing policy after another.

    kind: simulation
    seed: 7
    cluster:                              # one pool per system
      m1:   {profile: m1-pro/llama2-7b, count: 60}
      a100: {profile: swing-a100/llama2-7b, count: 8, queue: shared}
    cost_model: {method: interpolated, out_of_range: clamp}
    workload: {dataset: alpaca}           # token lengths (simulator.workload.spec)
    max_tokens: 512                       # the client's output limit; answers are cut at it
    arrival: {process: poisson, rate: 1.5, requests: 20000, warmup_s: 600}
    predictor: {kind: max_tokens}         # what routers guess of answer lengths (per policy overridable)
    policies:
      - {name: all-a100, policy: all_on, params: {system: a100}}
      - {name: input-32, policy: input_threshold, params: {threshold: 32, below: m1, above: a100}}
    slo_s: 60                             # optional latency target, reported as attainment
    cost: {lam: 0.5, reference: a100}     # the combined cost U reported per run
    sweep: {parameter: arrival.rate, values: [0.5, 1, 2]}   # optional: one parameter, many values

A sweep names one parameter by its YAML path (`arrival.rate`, `cluster.m1.count`, `cost.lam`,
`policies.<name>.params.threshold`); every policy runs at every value. Runs (policy x sweep point) go to
parallel worker processes; every run draws from the scenario's seed alone, so the results are identical
to a serial run, and all policies see the same requests at the same times. Pool options, arrival
processes and predictors are described in `cluster/`, `arrivals.py` and `predictors.py`.
"""

from __future__ import annotations

import os
import re
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from hybridsim.simulator.profiles.cost_models import build_cost_model
from tqdm import tqdm

from hybridsim.core.errors import HybridsimError
from hybridsim.core.file_names import file_names
from hybridsim.core.limits import MAX_SECONDS

from ..analysis.offline_bound import BoundResult
from ..arrivals import RequestStream, arrival_times, read_trace
from ..cluster import BatchModel, Cluster, PoolSetup, PowerCap
from ..engine import PoolConfig, simulate
from ..metrics.carbon import emissions, intensity_from_spec
from ..metrics.summary import headline, oracle_gaps, summarise
from ..policies.base import bind
from ..policies.registry import make_policy
from ..predictors import make_predictor
from ..profiles.registry import load_profile
from ..workload.spec import WorkloadSpec, build_workload
from .continuous_pools import check_continuous, continuous_config
from .offline_bounds import attach_offline_bounds, point_bound
from .pool_facts import profile_facts
from .simulation_schema import OUT_OF_RANGE_PRICING, PoolSpec, Scenario, changed
from .sweep import sweep_points
from .workers import WorkerPool

__all__ = ["Scenario", "check", "run", "run_one", "sweep_points"]


# -- checking what a schema cannot ------------------------------------------------------------------------


def _profile(spec: PoolSpec, where: str, base_dir: Path | None) -> Any:
    try:
        return load_profile(spec.profile, base_dir)
    except HybridsimError as error:
        raise HybridsimError(f"{where}.profile: {error}") from None


def _pool_configs(scenario: Scenario, base_dir: Path | None = None) -> list[PoolConfig]:
    configs = []
    for name, spec in scenario.cluster.items():
        profile = _profile(spec, f"cluster.{name}", base_dir)
        if spec.serving == "continuous":
            configs.append(continuous_config(name, spec, profile, scenario.cost_model.out_of_range))
            continue
        idle = spec.idle_power_w if spec.idle_power_w is not None else profile.metadata.idle_power_w
        if idle is None:
            raise HybridsimError(
                f"cluster.{name}.idle_power_w: profile {spec.profile} has no idle power; set one"
            )
        mode = scenario.cost_model.out_of_range
        model = build_cost_model(profile, scenario.cost_model.method, "clamp" if mode == "error" else mode)
        cap = (
            PowerCap(spec.power_cap.runtime_factor, spec.power_cap.power_factor)
            if spec.power_cap
            else PowerCap()
        )
        batch = BatchModel(spec.max_batch, spec.batch_runtime_growth, spec.batch_energy_growth)
        setup = PoolSetup(name, spec.count, float(idle), spec.queue, batch)
        configs.append(PoolConfig(setup, model, cap, mode == "error", spec.profile))
    return configs


def check(scenario: Scenario, base_dir: Path | None) -> None:
    """Everything that would fail a run, raised before any run starts (messages name the YAML path)."""
    labels: set[str] = set()
    configs = _pool_configs(scenario, base_dir)
    cluster = Cluster([config.setup for config in configs])
    for k, spec in enumerate(scenario.policies):
        if spec.label in labels:
            raise HybridsimError(f"policies.{k}.name: duplicate name {spec.label!r}")
        labels.add(spec.label)
        try:
            bind(make_policy(spec.policy, spec.params), cluster, np.random.default_rng(0))
        except (
            HybridsimError
        ) as error:  # "params.system: ..." continues the YAML path; a bare message follows it
            joint = "." if re.match(r"[\w.]+: ", str(error)) else ": "
            raise HybridsimError(f"policies.{k}{joint}{error}") from None
    if scenario.cost.reference is not None and scenario.cost.reference not in scenario.cluster:
        raise HybridsimError(f"cost.reference: no pool named {scenario.cost.reference!r}")
    if scenario.carbon is not None:
        intensity_from_spec(scenario.carbon, base_dir)
    arrival = scenario.arrival
    if (
        scenario.workload is not None
        and scenario.workload.requests is not None
        and arrival.requests is not None
        and scenario.workload.requests != arrival.requests
    ):
        raise HybridsimError("workload.requests: differs from arrival.requests; give the count in one place")
    stream, _ = build_stream(scenario, base_dir)
    check_continuous(configs, stream)


def _resolve(path: Path | None, base_dir: Path | None) -> Path:
    path = Path(path)  # type: ignore[arg-type]
    return path if path.is_absolute() or base_dir is None else Path(base_dir) / path


# -- building one run ---------------------------------------------------------------------------------------


def _seeds(seed: int) -> list[np.random.SeedSequence]:
    """A run's independent random streams, in a fixed order: arrival times, token
    lengths, predictor, policy.
    """
    return np.random.SeedSequence(seed).spawn(4)


def _workload(scenario: Scenario) -> WorkloadSpec:
    """The scenario's token lengths; without a workload, only a trace with token columns has them."""
    if scenario.workload is None:
        raise HybridsimError("workload: needed unless the arrival trace carries token counts")
    return scenario.workload


def build_stream(scenario: Scenario, base_dir: Path | None) -> tuple[RequestStream, str]:
    """The requests of a run (times and lengths), from the scenario's seed alone; and where they came from."""
    arrival = scenario.arrival
    times_seed, tokens_seed = _seeds(scenario.seed)[:2]
    rng = np.random.default_rng(times_seed)
    limits = None
    if arrival.process == "trace":
        trace = read_trace(_resolve(arrival.trace, base_dir))
        keep = np.ones(trace.arrival_s.size, dtype=bool)
        if arrival.duration_s is not None:
            keep = trace.arrival_s * arrival.time_scale <= arrival.duration_s
        if arrival.requests is not None:
            keep[arrival.requests :] = False
        times = trace.arrival_s[keep] * arrival.time_scale
        tokens = (
            (trace.input_tokens[keep], trace.output_tokens[keep])
            if trace.input_tokens is not None and trace.output_tokens is not None
            else None
        )
        limits = trace.max_tokens[keep] if trace.max_tokens is not None else None
        source = f"trace {arrival.trace}"
        scenario.refuse_unread_by_trace(tokens is not None, limits is not None)
    else:
        count = arrival.requests
        if count is None and arrival.duration_s is None:
            count = _workload(scenario).requests
        tokens = None
        if count is None and arrival.duration_s is None:
            lengths = build_workload(_workload(scenario), tokens_seed, base_dir)
            tokens, count = (lengths.input_tokens, lengths.output_tokens), len(lengths)
        assert arrival.rate is not None  # the schema asks every process but a trace for a rate
        times = arrival_times(
            arrival.process,
            rng,
            arrival.rate,
            count,
            arrival.duration_s,
            arrival.cv or 1.0,
            arrival.amplitude,
            arrival.period_s,
            arrival.phase_s,
        )
        source = f"{arrival.process} arrivals"
    if times.size == 0:
        raise HybridsimError("arrival: no request arrives within duration_s")
    if not (np.isfinite(times).all() and times.max() <= MAX_SECONDS):
        last = float(np.max(times)) if not np.isnan(times).any() else float("nan")
        raise HybridsimError(
            f"arrival: arrival times reach {last:.3g} s, beyond the {MAX_SECONDS:.0e} s one run may span "
            "(rate, cv or time_scale out of scale)"
        )
    if tokens is None:
        spec = _workload(scenario).model_copy(update={"requests": int(times.size)})
        lengths = build_workload(spec, tokens_seed, base_dir)
        tokens, source = (lengths.input_tokens, lengths.output_tokens), f"{source}; {lengths.provenance}"
    limits = limits if limits is not None else np.full(times.size, scenario.max_tokens, dtype=np.int64)
    outputs = np.minimum(tokens[1], limits)
    if not (times >= arrival.warmup_s).any():
        raise HybridsimError(
            f"arrival.warmup_s: every request arrives within the {arrival.warmup_s:g} s warm-up"
        )
    stream = RequestStream(
        times,
        np.asarray(tokens[0], np.int64),
        outputs.astype(np.int64),
        limits.astype(np.int64),
        arrival.warmup_s,
        arrival.duration_s,
        int(np.count_nonzero(tokens[1] > limits)),
    )
    return stream, source


def run_one(
    scenario: Scenario, policy_index: int, base_dir: Path | None, parquet: Path | None
) -> dict[str, Any]:
    """Simulate one policy of one (sweep point's) scenario; write its per-request file; return its summary."""
    spec = scenario.policies[policy_index]
    stream, source = build_stream(scenario, base_dir)
    predictor_spec = spec.predictor or scenario.predictor
    predictor = make_predictor(predictor_spec.kind, predictor_spec.noise, predictor_spec.prior_tokens)
    predictor_seed, policy_seed = _seeds(scenario.seed)[2:]
    try:
        result = simulate(
            _pool_configs(scenario, base_dir),
            stream,
            make_policy(spec.policy, spec.params),
            predictor,
            np.random.default_rng(policy_seed),
            np.random.default_rng(predictor_seed),
        )
    except HybridsimError as error:
        raise HybridsimError(f"policies.{policy_index} ({spec.label}): {error}") from None
    if parquet is not None:
        result.table.write_parquet(parquet)
    entry = {
        "policy": spec.label,
        "policy_class": spec.policy,
        "params": spec.params,
        "predictor": predictor_spec.model_dump(exclude_defaults=True) or {"kind": "max_tokens"},
        "requests_source": source,
    }
    slo = scenario.slo
    summary = summarise(
        result,
        scenario.slo_s,
        scenario.cost.lam,
        scenario.cost.reference,
        slo.targets() if slo else None,
        slo.attainment if slo else 0.9,
    )
    if scenario.carbon is not None:
        summary["carbon"] = emissions(result, intensity_from_spec(scenario.carbon, base_dir))
    return {**entry, **summary}


# -- workers and the files of a run ------------------------------------------------------------------------


def _task(args: tuple[Scenario, int, Path | None, Path | None]) -> tuple[dict[str, Any], list[str]]:
    """One run, with the warnings it raised (a worker process's warnings would otherwise print per worker)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        entry = run_one(*args)
    return entry, [str(warning.message) for warning in caught]


def _map(
    tasks: list[tuple[Scenario, int, Path | None, Path | None]],
    workers: int,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Run the tasks in order, in `workers` processes (the first failure cancels the rest).

    A progress bar counts finished runs on a terminal (stderr a TTY), and stays out of logs and CI.
    """
    with tqdm(
        total=len(tasks),
        unit="run",
        desc="simulating",
        leave=False,
        disable=len(tasks) < 2 or not sys.stderr.isatty(),
    ) as progress:
        if workers <= 1:
            results = []
            for task in tasks:
                results.append(_task(task))
                progress.update()
        else:
            results = []
            with WorkerPool(workers) as pool:  # an interruption anywhere in the block ends the workers
                for result in pool.imap(_task, tasks):
                    results.append(result)
                    progress.update()
    return [entry for entry, _ in results], [message for _, messages in results for message in messages]


def run(scenario: Scenario, out_dir: Path, scenario_path: Path | None = None) -> dict[str, Any]:
    """Run every policy at every sweep point; write per-request Parquet files and
    plots; return the summary.
    """
    from ..report.serving_plots import power_over_time
    from ..report.simulation_plots import write_plots

    source = str(scenario_path) if scenario_path else "scenario"
    base_dir = Path(scenario_path).resolve().parent if scenario_path else None
    swept = scenario.sweep.parameter.split(".")[0] == "predictor" if scenario.sweep else False
    if all(spec.predictor for spec in scenario.policies) and (swept or changed(scenario, "predictor")):
        where = "sweep.parameter" if swept else "predictor"
        raise HybridsimError(f"{source}: {where}: every policy names its own predictor; none reads this one")
    points = sweep_points(scenario, source)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for value, point in points:
            where = f"{source}: " + (f"sweep value {value!r}: " if scenario.sweep else "")
            try:
                check(point, base_dir)
            except HybridsimError as error:
                raise HybridsimError(f"{where}{error}") from None
    messages = [str(warning.message) for warning in caught]
    tasks, files = [], []
    folders = file_names(
        [f"{scenario.sweep.parameter}={value}" if scenario.sweep else "" for value, _ in points]
    )
    for folder_name, (_, point) in zip(folders, points, strict=True):
        folder = Path("requests") / folder_name
        names = file_names([spec.label for spec in point.policies])
        for index, name in enumerate(names):
            relative = folder / f"{name}.parquet" if scenario.write_requests else None
            files.append(relative)
            tasks.append((point, index, base_dir, out_dir / relative if relative else None))
    workers = min(scenario.workers or os.cpu_count() or 1, len(tasks))
    try:
        runs, run_messages = _map(tasks, workers)
    except HybridsimError as error:
        raise HybridsimError(f"{source}: {error}") from None
    for message in dict.fromkeys(messages + run_messages):  # each distinct warning once, whatever the workers
        warnings.warn(message, UserWarning, stacklevel=2)
    per_point = len(scenario.policies)
    for k, entry in enumerate(runs):
        entry["point"] = k // per_point
        entry["sweep_value"] = points[k // per_point][0]
        entry["requests_file"] = file.as_posix() if (file := files[k]) else None
    with warnings.catch_warnings():
        # the runs have already reported what pricing these requests warns about
        warnings.simplefilter("ignore")
        bounds = [offline_bound(point, base_dir) for _, point in points]
    attach_offline_bounds(runs, bounds)
    summary: dict[str, Any] = {
        "kind": "simulation",
        "scenario": scenario.name or (Path(scenario_path).stem if scenario_path else None),
        "description": scenario.description,
        "seed": scenario.seed,
        "sweep": scenario.sweep.model_dump() if scenario.sweep else None,
        "cluster": {
            name: {
                **spec.model_dump(exclude_none=True),
                **profile_facts(spec, base_dir, scenario.cost_model.out_of_range),
            }
            for name, spec in scenario.cluster.items()
        },
        "cost_model": {
            **scenario.cost_model.model_dump(),
            "outside_profile_range": OUT_OF_RANGE_PRICING[scenario.cost_model.out_of_range],
        },
        "runs": runs,
        "oracle_gap": oracle_gaps(runs),
    }
    summary["plots"] = write_plots(summary, out_dir)
    power = power_over_time(summary, out_dir)
    if power is not None:
        summary["plots"].append(power)
    summary["headline"] = headline(summary)
    return summary


def offline_bound(scenario: Scenario, base_dir: Path | None) -> BoundResult | str:
    """The offline energy bound for a scenario's requests on its pools, or why there is none."""
    return point_bound(_pool_configs(scenario, base_dir), build_stream(scenario, base_dir)[0])
