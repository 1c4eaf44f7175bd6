"""The operator's report of one run: the energy bill, the latency users saw, how busy each system was.

Energy is the whole run's bill, from t = 0 to the horizon (the last answer, or the end of the arrival window
if later): the *active* energy each request cost on the node that served it (the profile's E(m, n), CPU and
GPU shares where the profile has them) plus the *idle* energy every node drew while it served nothing
(idle power x idle time). Latency statistics (arrival to last token) leave out requests that arrived in the
warm-up; energy does not, so that it adds up.

The combined cost U = lam * E + (1 - lam) * L of a run (E total energy, L summed latency) is reported
normalised like the closed-form threshold analysis when a reference pool is named: E and L are divided by
the energy and runtime the same requests would cost on the reference system with no queue, so U = 1 is
"the reference system, infinitely large". Without a reference, U is per request, in joules and seconds.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hybridsim.core.text import significant

from .result import RunResult
from .serving_summary import pool_serving, slo_report, throughput, token_latency

JOULES_PER_KWH = 3.6e6
SATURATION_UTILISATION = 0.95
SATURATION_SHARE = 0.02
SATURATION_PER_NODE = 2
"""A pool is *saturated* when it was busy 95% of the run, or when at the last arrival more of the requests
sent to it were still waiting or in service than 2% of them and than 2 per node: it was falling behind,
not just busy. (Utilisation alone cannot tell: a falling-behind pool of per-node queues keeps draining, some
nodes idle, long after the last arrival.)"""


def _energy(active: float, idle: float, cpu: float, gpu: float) -> dict[str, float]:
    total = active + idle
    return {
        "total_j": total,
        "active_j": active,
        "idle_j": idle,
        "cpu_j": cpu,
        "gpu_j": gpu,
        "total_kwh": total / JOULES_PER_KWH,
        "active_kwh": active / JOULES_PER_KWH,
        "idle_kwh": idle / JOULES_PER_KWH,
    }


def _quantiles(values: np.ndarray, names: tuple[str, ...] = ("p50", "p90", "p99")) -> dict[str, float | None]:
    """Mean and percentiles; None for an empty set (JSON has no NaN)."""
    if not values.size:
        return {"mean": None, **{name: None for name in names}}
    points = np.percentile(values, [float(name[1:]) for name in names])
    return {
        "mean": float(values.mean()),
        **{name: float(point) for name, point in zip(names, points, strict=True)},
    }


def summarise(
    result: RunResult,
    slo_s: float | None = None,
    lam: float = 0.5,
    reference: str | None = None,
    slos: dict[str, float] | None = None,
    attainment: float = 0.9,
) -> dict[str, Any]:
    """The summary of one run (JSON-ready), per system and in total."""
    table = result.table
    code = table["system_code"]
    measured = ~table["in_warmup"]
    latency, wait = table["latency_s"][measured], table["wait_s"][measured]
    idle_j = result.idle_j
    requests = len(table)
    tokens = float(table["input_tokens"].sum() + table["output_tokens"].sum())
    first_arrival, last_arrival = float(table["arrival_s"].min()), float(table["arrival_s"].max())
    makespan = float(table["finish_s"].max()) - first_arrival

    systems: dict[str, Any] = {}
    for position, name in enumerate(result.systems):
        here = code == position
        nodes = result.node_system == position
        count = int(nodes.sum())
        busy = float(result.ledger["busy_s"][nodes].sum())
        backlog = int(np.count_nonzero(here & (table["finish_s"] > last_arrival)))
        utilisation = busy / (count * result.horizon_s) if count and result.horizon_s > 0 else 0.0
        systems[name] = {
            "nodes": count,
            "requests": int(here.sum()),
            "share": float(here.mean()),
            "utilisation": utilisation,
            "energy": _energy(
                float(table["energy_j"][here].sum()),
                float(idle_j[nodes].sum()),
                float(table["cpu_energy_j"][here].sum()),
                float(table["gpu_energy_j"][here].sum()),
            ),
            "latency_s": _quantiles(table["latency_s"][here & measured]),
            "outside_profile_range": int(np.count_nonzero(table["outside_profile_range"][here])),
            # only the 'paper' fits produce these: a negative energy (total, CPU or GPU) is kept (totals stay
            # the fit's), a negative runtime is served in zero time
            "negative_energy_requests": int(
                np.count_nonzero(
                    (table["energy_j"][here] < 0)
                    | (table["cpu_energy_j"][here] < 0)
                    | (table["gpu_energy_j"][here] < 0)
                )
            ),
            "zero_runtime_requests": int(np.count_nonzero(table["service_s"][here] <= 0)),
            "backlog_at_last_arrival": backlog,
            # a batching node is busy whenever it holds a request, however small its batch: for it only the
            # backlog says whether it falls behind
            "saturated": bool(
                (utilisation >= SATURATION_UTILISATION and name not in result.passes)
                or backlog > max(SATURATION_SHARE * here.sum(), SATURATION_PER_NODE * count)
            ),
        }
        if name in result.passes:
            idle_w = float(result.idle_power_w[nodes][0]) if count else 0.0
            systems[name]["serving"] = pool_serving(result, position, name, idle_w)

    energy = _energy(
        float(table["energy_j"].sum()),
        float(idle_j.sum()),
        float(table["cpu_energy_j"].sum()),
        float(table["gpu_energy_j"].sum()),
    )
    summary: dict[str, Any] = {
        "requests": requests,
        "requests_measured": int(measured.sum()),
        "warmup_s": result.warmup_s,
        "energy": energy,
        "energy_per_request_j": energy["total_j"] / requests,
        "energy_per_token_j": energy["total_j"] / tokens,
        "latency_s": _quantiles(latency),
        "wait_s": _quantiles(wait, ("p99",)),
        "service_s": {"mean": float(table["service_s"].mean())},
        "throughput_rps": requests / makespan if makespan > 0 else None,
        "makespan_s": makespan,
        "horizon_s": result.horizon_s,
        "systems": systems,
        "offered_rps": requests / (last_arrival - first_arrival) if last_arrival > first_arrival else None,
        "saturated": [name for name, values in systems.items() if values["saturated"]],
        "outside_profile_range": int(np.count_nonzero(table["outside_profile_range"])),
        "outputs_cut_at_max_tokens": result.outputs_cut,
        "slo": None,
        "cost_u": _cost_u(result, energy["total_j"], float(table["latency_s"].sum()), lam, reference),
    }
    if slo_s is not None:
        summary["slo"] = {"target_s": slo_s, "attainment": float(np.mean(latency <= slo_s))}
    summary["throughput"] = throughput(result)
    summary["tokens"] = token_latency(result)
    summary["slos"] = slo_report(result, slos, attainment) if slos else None
    return summary


def _cost_u(
    result: RunResult, energy_j: float, latency_s: float, lam: float, reference: str | None
) -> dict[str, Any]:
    requests = len(result.table)
    if reference is None:
        value = lam * energy_j / requests + (1.0 - lam) * latency_s / requests
        return {"lam": lam, "reference": None, "value": value, "unit": "J and s per request"}
    costs = result.costs[reference]
    value = lam * energy_j / float(costs.energy_j.sum()) + (1.0 - lam) * latency_s / float(
        costs.runtime_s.sum()
    )
    return {
        "lam": lam,
        "reference": reference,
        "value": value,
        "unit": f"relative to every request on {reference} with no queue",
    }


def oracle_gaps(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What not knowing the answer's length costs: each run against the same policy under an exact oracle.

    Runs are paired when they share the sweep point, the policy and its parameters, and differ only in
    the predictor; the reference is the one with `oracle` and no noise. Positive percentages: worse than
    the oracle.
    """

    def key(run: dict[str, Any]) -> tuple[Any, ...]:
        return run.get("point"), run["policy_class"], repr(sorted(run["params"].items()))

    def exact(run: dict[str, Any]) -> bool:
        return run["predictor"].get("kind") == "oracle" and not run["predictor"].get("noise")

    def pct(a: float, b: float) -> float | None:
        return 100.0 * (a - b) / b if b else None

    oracles = {key(run): run for run in runs if exact(run)}
    gaps = []
    for run in runs:
        oracle = oracles.get(key(run))
        if oracle is None or run is oracle:
            continue
        gaps.append(
            {
                "point": run.get("point"),
                "sweep_value": run.get("sweep_value"),
                "policy": run["policy"],
                "oracle_policy": oracle["policy"],
                "predictor": run["predictor"],
                "energy_pct": pct(run["energy"]["total_j"], oracle["energy"]["total_j"]),
                "latency_p99_pct": pct(run["latency_s"]["p99"], oracle["latency_s"]["p99"]),
                "latency_mean_pct": pct(run["latency_s"]["mean"], oracle["latency_s"]["mean"]),
            }
        )
    return gaps


SATURATED_MEANS = "a pool busy 95% of the run, or falling behind at the last arrival"
ORACLE_MEANS = "routed knowing each answer's true length"


def _glossary(runs: list[dict[str, Any]], saturated: bool) -> str:
    """The words of a headline a reader may not know, explained on their own line."""
    words = []
    if any(run["predictor"].get("kind") == "oracle" for run in runs):
        words.append(f"oracle: {ORACLE_MEANS}, where the others predict it")
    if saturated:
        words.append(f"saturated: {SATURATED_MEANS}")
    return ("\n  (" + "; ".join(words) + ")") if words else ""


def _run_line(run: dict[str, Any]) -> str:
    p99 = run["latency_s"]["p99"]
    shown = f"{p99:,.0f}" if p99 >= 100 else f"{p99:.3g}"
    return f"{run['policy']} {significant(run['energy']['total_kwh'])} kWh, p99 {shown} s"


def headline(summary: dict[str, Any]) -> str:
    """A few lines for the terminal: the baselines (every request on one system), who is cheapest, who is
    fastest, where pools saturate, how many requests fell outside a profile's range, and what the words
    mean."""
    runs = summary["runs"]
    name = summary.get("scenario") or "simulation"
    if summary.get("sweep") is None:
        cheapest = min(runs, key=lambda run: run["energy"]["total_j"])
        fastest = min(runs, key=lambda run: run["latency_s"]["p99"])
        baselines = [run for run in runs if run.get("policy_class") == "all_on"]
        lines = (
            [
                f"{name}: baseline{'s' if len(baselines) > 1 else ''} (every request on one system): "
                + "; ".join(_run_line(run) for run in baselines)
            ]
            if baselines
            else [f"{name}:"]
        )
        reference = min(baselines, key=lambda run: run["energy"]["total_j"]) if baselines else None
        versus = (
            f", {100.0 * (cheapest['energy']['total_j'] / reference['energy']['total_j'] - 1.0):+.1f}% "
            f"vs {reference['policy']}"
            if reference is not None and reference is not cheapest
            else ""
        )
        lines.append(f"  lowest energy: {_run_line(cheapest)}{versus}; lowest p99: {_run_line(fastest)}")
        saturated = [f"{run['policy']} ({', '.join(run['saturated'])})" for run in runs if run["saturated"]]
        if saturated:
            lines.append(f"  saturated: {'; '.join(saturated)}")
        with_slos = [run for run in runs if run.get("slos")]
        if with_slos:
            met = [run["policy"] for run in with_slos if run["slos"]["all_met"]]
            lines.append(f"  SLOs met by: {', '.join(met)}" if met else "  no policy met every SLO")
        outside = max((run.get("outside_profile_range", 0) for run in runs), default=0)
        priced = (summary.get("cost_model") or {}).get("outside_profile_range")
        if outside and priced:
            lines.append(
                f"  up to {outside:,} of {runs[0]['requests']:,} requests per run fell outside a profile's "
                f"measured range: {priced}"
            )
        return "\n".join(lines) + _glossary(runs, bool(saturated))
    parameter = summary["sweep"]["parameter"]
    parts = []
    for label in dict.fromkeys(run["policy"] for run in runs):
        mine = [run for run in runs if run["policy"] == label]
        pools = list(dict.fromkeys(pool for run in mine for pool in run["saturated"]))
        saturated = [_value(run["sweep_value"]) for run in mine if run["saturated"]]
        part = (
            f"{label}: {', '.join(pools)} saturated at {', '.join(saturated)}"
            if pools
            else f"{label}: none saturated"
        )
        if any(run.get("slos") for run in mine):
            met = [_value(run["sweep_value"]) for run in mine if (run.get("slos") or {}).get("all_met")]
            part += f", SLOs met at {', '.join(met)}" if met else ", SLOs met at no value"
        parts.append(part)
    return f"{name}: {parameter} sweep; " + "; ".join(parts)


def _value(value: object) -> str:
    """A sweep value as a headline shows it (12 rather than 12.0)."""
    return f"{value:g}" if isinstance(value, float) else str(value)
