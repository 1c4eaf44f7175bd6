"""Static threshold routing between two systems, in closed form (no queues).

An operator with a small, frugal system A (M1 Pro nodes) and a big, fast system B (A100 nodes) sends
every request whose size is at most T to A and the rest to B. For each T the energy of the whole
workload is a sum over requests, so the sweep needs no simulation: sort the requests by their routing
key once, take cumulative sums of what each request costs on A and on B, and `searchsorted` every T.
A sweep over 4096 thresholds and 52k requests then costs a few milliseconds.

Routing rules (`rule`): 'input' (m <= T), 'output' (n <= T) or 'product' (m*n <= T^2).

Two ways to price a request (`method`):

* `paper`: the e2dc artifact of Wilkins et al. (reference README §6). Per token bin (a power of two),
  the mean energy per token (EPT) and mean runtime over all trials of all models a system ran (pooled,
  each profile point weighted by its n_trials). A request of length L costs L * EPT(bin(L)) joules and
  runtime(bin(L)) seconds, with bin(L) the nearest power of two clipped to the measured bins. L is the
  input length for the input rule and the output length for the output rule. The artifact's output
  script looked output-sweep bins up with the *input* lengths (and thresholded those), and its
  `"0" not in Phase` filter dropped the output bins 1024-4096 along with iteration 0: bugs that
  `paper_lengths(..., artifact_output_bug=True)` and `artifact_output_table` replicate. Iterations 10
  and 20, which the same filter dropped, are kept here (up to 0.3% in three cells). The artifact's
  "runtime" curve is the token-weighted sum of L * runtime(bin(L)); it is reported as
  `runtime_metric_artifact`, and `runtime_s` is the plain sum of per-request runtimes.
* `per-request`: each request costs E(m, n) and R(m, n) of the profiles' cost models on the system it
  is routed to; with several profiles (models) on a system, the mean of their costs (every model serves
  an equal share).

The combined cost U = lam * E / E_allB + (1 - lam) * R / R_allB normalises each term by its all-on-B
baseline, so U = 1 for "everything on B" and U < 1 is better than the status quo on the lam-weighted scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from hybridsim.core.errors import HybridsimError
from hybridsim.core.profile_model import CostModel, Profile

from ..profiles.cost_models import outside_mask

RULES = ("input", "output", "product")
JOULES_PER_KWH = 3.6e6


@dataclass(frozen=True)
class RequestCosts:
    """What each request would cost on system A and on system B."""

    energy_a: np.ndarray
    energy_b: np.ndarray
    runtime_a: np.ndarray
    runtime_b: np.ndarray
    extra_a: dict[str, np.ndarray] = field(default_factory=dict)
    """Further per-request quantities summed like energy (e.g. the artifact's token-weighted runtime)."""
    extra_b: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class SweepResult:
    """Energy, runtime and combined cost of the workload at each threshold, and both baselines."""

    thresholds: np.ndarray
    energy_j: np.ndarray
    runtime_s: np.ndarray
    requests_on_a: np.ndarray
    cost_u: np.ndarray
    lam: float
    energy_all_a: float
    energy_all_b: float
    runtime_all_a: float
    runtime_all_b: float
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    extra_all_a: dict[str, float] = field(default_factory=dict)
    extra_all_b: dict[str, float] = field(default_factory=dict)

    @property
    def best_index(self) -> int:
        """The threshold with the least energy (the smallest such threshold on ties)."""
        return int(np.argmin(self.energy_j))

    @property
    def best_u_index(self) -> int:
        return int(np.argmin(self.cost_u))

    def to_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(
            {
                "threshold": self.thresholds,
                "energy_j": self.energy_j,
                "energy_kwh": self.energy_j / JOULES_PER_KWH,
                "runtime_s": self.runtime_s,
                "cost_u": self.cost_u,
                "requests_on_a": self.requests_on_a,
            }
        )
        for name, values in self.extra.items():
            frame[name] = values
        return frame


def routing_key(input_tokens: np.ndarray, output_tokens: np.ndarray, rule: str) -> np.ndarray:
    """The quantity compared with T (or T^2 for 'product')."""
    if rule == "input":
        return np.asarray(input_tokens, dtype=np.int64)
    if rule == "output":
        return np.asarray(output_tokens, dtype=np.int64)
    if rule == "product":
        return np.asarray(input_tokens, dtype=np.int64) * np.asarray(output_tokens, dtype=np.int64)
    raise HybridsimError(f"rule: unknown rule {rule!r} (known: {', '.join(RULES)})")


def threshold_limits(thresholds: Sequence[int] | np.ndarray, rule: str) -> np.ndarray:
    """The largest key routed to A at each threshold: T, or T^2 for the product rule."""
    limits = np.asarray(thresholds, dtype=np.int64)
    return limits * limits if rule == "product" else limits


def sweep(
    key: np.ndarray, costs: RequestCosts, thresholds: Sequence[int] | np.ndarray, rule: str, lam: float = 0.5
) -> SweepResult:
    """Energy and runtime of the workload at every threshold: requests with key <= limit go to A."""
    key = np.asarray(key)
    if key.size == 0:
        raise HybridsimError("workload: no requests to sweep")
    if not 0.0 <= lam <= 1.0:
        raise HybridsimError(f"lam: must be within [0, 1], got {lam}")
    thresholds = np.asarray(thresholds, dtype=np.int64)
    order = np.argsort(key, kind="stable")
    split = np.searchsorted(key[order], threshold_limits(thresholds, rule), side="right")

    def split_sums(on_a: np.ndarray, on_b: np.ndarray) -> tuple[np.ndarray, float, float]:
        cum_a = np.concatenate([[0.0], np.cumsum(np.asarray(on_a, dtype=np.float64)[order])])
        cum_b = np.concatenate([[0.0], np.cumsum(np.asarray(on_b, dtype=np.float64)[order])])
        return cum_a[split] + (cum_b[-1] - cum_b[split]), float(cum_a[-1]), float(cum_b[-1])

    energy, energy_all_a, energy_all_b = split_sums(costs.energy_a, costs.energy_b)
    runtime, runtime_all_a, runtime_all_b = split_sums(costs.runtime_a, costs.runtime_b)
    extra, extra_all_a, extra_all_b = {}, {}, {}
    for name in costs.extra_a:
        extra[name], extra_all_a[name], extra_all_b[name] = split_sums(
            costs.extra_a[name], costs.extra_b[name]
        )
    return SweepResult(
        thresholds=thresholds,
        energy_j=energy,
        runtime_s=runtime,
        requests_on_a=split.astype(np.int64),
        cost_u=combined_cost(energy, runtime, energy_all_b, runtime_all_b, lam),
        lam=lam,
        energy_all_a=energy_all_a,
        energy_all_b=energy_all_b,
        runtime_all_a=runtime_all_a,
        runtime_all_b=runtime_all_b,
        extra=extra,
        extra_all_a=extra_all_a,
        extra_all_b=extra_all_b,
    )


def combined_cost(
    energy: np.ndarray | float,
    runtime: np.ndarray | float,
    energy_all_b: float,
    runtime_all_b: float,
    lam: float,
) -> np.ndarray:
    """U = lam * E / E_allB + (1 - lam) * R / R_allB (1.0 = everything on system B)."""
    return lam * np.asarray(energy) / energy_all_b + (1.0 - lam) * np.asarray(runtime) / runtime_all_b


# ----------------------------------------------------------------------------------------------- paper method


@dataclass(frozen=True)
class PerBinTable:
    """One system's pooled per-bin means on one sweep: the dictionaries the artifact builds."""

    system: str
    sweep: str
    bins: np.ndarray
    energy_per_token_j: np.ndarray
    runtime_s: np.ndarray
    n_trials: np.ndarray

    def lookup(self, lengths: np.ndarray) -> np.ndarray:
        """Index of bin(L): the nearest power of two (in log2), clipped to the measured bins."""
        target = np.round(np.log2(np.maximum(np.asarray(lengths, dtype=np.float64), 1.0)))
        logs = np.log2(self.bins.astype(np.float64))
        if logs.size == 1:
            return np.zeros(target.shape, dtype=np.int64)
        pos = np.clip(np.searchsorted(logs, target), 1, logs.size - 1)
        return np.where(target - logs[pos - 1] <= logs[pos] - target, pos - 1, pos).astype(np.int64)

    def outside(self, lengths: np.ndarray) -> int:
        """Requests whose nearest power of two lies beyond the measured bins (priced at the end bin)."""
        target = 2.0 ** np.round(np.log2(np.maximum(np.asarray(lengths, dtype=np.float64), 1.0)))
        return int(np.count_nonzero((target < self.bins[0]) | (target > self.bins[-1])))

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "system": self.system,
                "sweep": self.sweep,
                "token_bin": self.bins,
                "energy_per_token_j": self.energy_per_token_j,
                "runtime_s": self.runtime_s,
                "n_trials": self.n_trials,
            }
        )


def _point_bins(points: pd.DataFrame, sweep_name: str) -> np.ndarray:
    """The bin each measured point belongs to: the nominal input bin, or the output limit."""
    if sweep_name == "output":
        return points["output_tokens"].to_numpy(np.int64)
    if "input_tokens_nominal" in points.columns and points["input_tokens_nominal"].notna().all():
        return points["input_tokens_nominal"].to_numpy(np.int64)
    return (2 ** np.round(np.log2(points["input_tokens"].to_numpy(np.float64)))).astype(np.int64)


def _energy_per_token(points: pd.DataFrame) -> np.ndarray:
    """The paper's EPT (mean over trials of energy / total tokens), or the best stand-in a profile has."""
    if "energy_per_token_j_mean" in points.columns and points["energy_per_token_j_mean"].notna().all():
        return points["energy_per_token_j_mean"].to_numpy(np.float64)
    if "total_tokens_mean" in points.columns and points["total_tokens_mean"].notna().all():
        return points["energy_j_mean"].to_numpy(np.float64) / points["total_tokens_mean"].to_numpy(np.float64)
    total = points["input_tokens"].to_numpy(np.float64) + points["output_tokens"].to_numpy(np.float64)
    return points["energy_j_mean"].to_numpy(np.float64) / total


def per_bin_table(
    profiles: Sequence[Profile], sweep_name: str, system: str, runtime: str = "as-recorded"
) -> PerBinTable:
    """Pool the profiles' `sweep_name` points per bin, weighting each point by its n_trials.

    `runtime='as-recorded'` uses `runtime_s_mean_as_recorded` where a profile has it (M1 runtimes with the
    2 s sleep, as the artifact read them); 'corrected' uses `runtime_s_mean`.
    """
    frames = []
    for profile in profiles:
        points = profile.sweep(sweep_name)
        points = points[points["n_trials"] > 0]
        if points.empty:
            raise HybridsimError(
                f"profile {profile.name}: no measured {sweep_name}-sweep points for the paper method"
            )
        column = "runtime_s_mean"
        if runtime == "as-recorded" and "runtime_s_mean_as_recorded" in points.columns:
            column = "runtime_s_mean_as_recorded"
        frames.append(
            pd.DataFrame(
                {
                    "bin": _point_bins(points, sweep_name),
                    "weight": points["n_trials"].to_numpy(np.float64),
                    "ept": _energy_per_token(points),
                    "runtime": points[column].to_numpy(np.float64),
                }
            )
        )
    pooled = pd.concat(frames, ignore_index=True)
    pooled["ept_w"] = pooled["ept"] * pooled["weight"]
    pooled["runtime_w"] = pooled["runtime"] * pooled["weight"]
    sums = pooled.groupby("bin", sort=True)[["weight", "ept_w", "runtime_w"]].sum()
    return PerBinTable(
        system,
        sweep_name,
        sums.index.to_numpy(np.int64),
        (sums["ept_w"] / sums["weight"]).to_numpy(),
        (sums["runtime_w"] / sums["weight"]).to_numpy(),
        sums["weight"].to_numpy(np.int64),
    )


def paper_costs(lengths: np.ndarray, table_a: PerBinTable, table_b: PerBinTable) -> RequestCosts:
    """Per-request costs the artifact's way: L * EPT(bin(L)) joules, runtime(bin(L)) seconds."""
    lengths = np.asarray(lengths, dtype=np.int64)
    costs = {}
    for side, table in (("a", table_a), ("b", table_b)):
        index = table.lookup(lengths)
        costs[side] = (
            lengths * table.energy_per_token_j[index],
            table.runtime_s[index],
            lengths * table.runtime_s[index],
        )
    return RequestCosts(
        costs["a"][0],
        costs["b"][0],
        costs["a"][1],
        costs["b"][1],
        extra_a={"runtime_metric_artifact": costs["a"][2]},
        extra_b={"runtime_metric_artifact": costs["b"][2]},
    )


def paper_lengths(
    input_tokens: np.ndarray, output_tokens: np.ndarray, rule: str, artifact_output_bug: bool = False
) -> tuple[np.ndarray, str]:
    """(the length L that is priced and thresholded, the sweep whose bins price it) for the paper method."""
    if rule == "input":
        return np.asarray(input_tokens), "input"
    if rule == "output":
        return (np.asarray(input_tokens) if artifact_output_bug else np.asarray(output_tokens)), "output"
    raise HybridsimError(
        "rule: the paper method prices one token axis (input or output); "
        "use method: per-request for the product rule"
    )


def artifact_output_table(table: PerBinTable) -> PerBinTable:
    """The artifact's output tables: its `"0" not in Phase` filter dropped every bin whose label has a 0."""
    keep = np.array(["0" not in str(b) for b in table.bins])
    return PerBinTable(
        table.system,
        table.sweep,
        table.bins[keep],
        table.energy_per_token_j[keep],
        table.runtime_s[keep],
        table.n_trials[keep],
    )


# ----------------------------------------------------------------------------------------- per-request method


def unique_pairs(
    input_tokens: np.ndarray, output_tokens: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (m, n) pairs and the index mapping every request to its pair (cost
    models run once per pair).
    """
    pairs = np.stack([np.asarray(input_tokens, np.int64), np.asarray(output_tokens, np.int64)], axis=1)
    unique, inverse = np.unique(pairs, axis=0, return_inverse=True)
    return unique[:, 0], unique[:, 1], inverse.reshape(-1)


def mean_cost(models: Sequence[CostModel], m: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean energy and runtime over a system's models (each serves an equal share of the requests)."""
    energy = np.mean([np.asarray(model.energy_j(m, n), dtype=np.float64) for model in models], axis=0)
    runtime = np.mean([np.asarray(model.runtime_s(m, n), dtype=np.float64) for model in models], axis=0)
    return energy, runtime


def per_request_costs(
    models_a: Sequence[CostModel],
    models_b: Sequence[CostModel],
    input_tokens: np.ndarray,
    output_tokens: np.ndarray,
) -> RequestCosts:
    """Each request's E(m, n) and R(m, n) on A and on B."""
    m, n, inverse = unique_pairs(input_tokens, output_tokens)
    energy_a, runtime_a = mean_cost(models_a, m, n)
    energy_b, runtime_b = mean_cost(models_b, m, n)
    return RequestCosts(energy_a[inverse], energy_b[inverse], runtime_a[inverse], runtime_b[inverse])


def outside_range(model: CostModel, input_tokens: np.ndarray, output_tokens: np.ndarray) -> int:
    """Requests with m or n outside the lengths the model was measured over."""
    return int(np.count_nonzero(outside_mask(model, input_tokens, output_tokens)))
