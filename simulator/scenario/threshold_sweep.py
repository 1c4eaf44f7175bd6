"""Scenario kind `threshold-sweep`: which token threshold should split a workload between two systems?

    kind: threshold-sweep
    name: paper-input-threshold
    seed: 0                        # draws workload.requests (unused without them: refused)
    systems:                       # exactly two, small (gets requests <= T) first, then large
      M1-Pro: {profiles: [m1-pro/llama2-7b, m1-pro/mistral-7b]}
      Swing AMD+A100: {profiles: [swing-a100/llama2-7b, swing-a100/mistral-7b, swing-a100/falcon-7b]}
    workload: {dataset: alpaca}
    method: paper                  # or per-request
    rule: input                    # input | output | product (m*n <= T^2)
    thresholds: {start: 8, stop: 2048, scale: powers-of-two}   # or a list, or {start, stop, step}
    lam: 0.5                       # weight of energy in U = lam*E/E_allB + (1-lam)*R/R_allB
    cost_model: interpolated       # per-request: the profiles' interpolated or paper (bilinear) model
    out_of_range: clamp            # per-request: clamp (default) | error | extrapolate
    paper_runtime: as-recorded     # paper: M1 runtimes with the 2 s sleep (as the artifact) or corrected
    artifact_output_bug: false     # paper + output: replicate the artifact (input lengths, bins <= 512)

`run` writes `sweep.csv`, the per-bin tables (paper method), and energy/runtime plots, and returns the
summary the loader writes as `summary.json`. The analysis itself is `hybridsim.simulator.analysis.threshold`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import pydantic
from hybridsim.simulator.profiles.cost_models import build_cost_model
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from hybridsim.core.errors import HybridsimError, ProfileRangeError
from hybridsim.core.limits import INT64_MAX

from ..analysis.threshold import (
    JOULES_PER_KWH,
    SweepResult,
    artifact_output_table,
    combined_cost,
    outside_range,
    paper_costs,
    paper_lengths,
    per_bin_table,
    per_request_costs,
    routing_key,
    sweep,
)
from ..profiles.cost_models import outside_message
from ..profiles.registry import load_profile
from ..workload.datasets import TokenLengths
from ..workload.spec import WorkloadSpec, build_workload
from .simulation_schema import changed, unread


def invalid(message: str) -> PydanticCustomError:
    """A validation error whose message the user reads as is (no 'Value error,' prefix)."""
    return PydanticCustomError("value_error", message)


U_NORMALISATION = (
    "U = lam * E / E_allB + (1 - lam) * R / R_allB (each term divided by its all-on-second-system baseline)"
)


class SystemSpec(BaseModel):
    """One side of the split: the profiles (models) its nodes serve."""

    model_config = ConfigDict(extra="forbid")
    profiles: list[str] = Field(min_length=1)

    @field_validator("profiles")
    @classmethod
    def _profiles_exist(cls, names: list[str], info: ValidationInfo) -> list[str]:
        base_dir = (info.context or {}).get("base_dir")
        for name in names:
            try:
                load_profile(name, base_dir)
            except HybridsimError as error:
                raise invalid(str(error)) from None
        return names


MAX_THRESHOLDS = 100_000
"""Most thresholds one sweep may have: each is a row of summary.json and sweep.csv."""


class ThresholdRange(BaseModel):
    """Thresholds start..stop (inclusive) every `step`, or the powers of two within [start, stop]."""

    model_config = ConfigDict(extra="forbid")
    start: int = Field(ge=0, le=INT64_MAX)
    stop: int = Field(ge=0, le=INT64_MAX)
    step: int = Field(default=1, ge=1)
    scale: Literal["linear", "powers-of-two"] = "linear"

    @model_validator(mode="after")
    def _not_empty_nor_huge(self) -> ThresholdRange:
        if self.stop < self.start:
            raise invalid(f"stop ({self.stop}) is below start ({self.start})")
        if self.scale == "powers-of-two" and self.step != 1:
            raise unread(
                "step", "spaces linear thresholds only; scale: powers-of-two takes every power of two"
            )
        if self.scale == "powers-of-two" and not self.values():
            raise invalid(f"no power of two within [{self.start}, {self.stop}]")
        if self.scale == "linear" and (self.stop - self.start) // self.step + 1 > MAX_THRESHOLDS:
            raise invalid(
                f"{(self.stop - self.start) // self.step + 1:,} thresholds; at most {MAX_THRESHOLDS:,} "
                "(raise step, or use scale: powers-of-two)"
            )
        return self

    def values(self) -> list[int]:
        if self.scale == "linear":
            return list(range(self.start, self.stop + 1, self.step))
        return [2**k for k in range(0, 63) if self.start <= 2**k <= self.stop]


class Scenario(BaseModel):
    """A static threshold sweep between two systems over one workload."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    kind: Literal["threshold-sweep"]
    name: str | None = None
    description: str | None = None
    seed: int = Field(default=0, ge=0, le=INT64_MAX)
    systems: dict[str, SystemSpec]
    workload: WorkloadSpec
    method: Literal["paper", "per-request"] = "paper"
    rule: Literal["input", "output", "product"] = "input"
    thresholds: list[int] | ThresholdRange = ThresholdRange(start=1, stop=4096)
    lam: float = Field(default=0.5, ge=0.0, le=1.0)
    cost_model: Literal["interpolated", "paper"] = "interpolated"
    out_of_range: Literal["error", "clamp", "extrapolate"] = "clamp"
    paper_runtime: Literal["as-recorded", "corrected"] = "as-recorded"
    artifact_output_bug: bool = False

    @field_validator("systems")
    @classmethod
    def _two_systems(cls, systems: dict[str, SystemSpec]) -> dict[str, SystemSpec]:
        if len(systems) != 2:
            raise invalid(f"need exactly two systems (small first, then large), got {len(systems)}")
        return systems

    @field_validator("rule")
    @classmethod
    def _rule_fits_method(cls, rule: str, info: ValidationInfo) -> str:
        if rule == "product" and info.data.get("method") == "paper":
            raise invalid("the paper method prices one token axis; use method: per-request for rule: product")
        return rule

    @field_validator("thresholds", mode="before")
    @classmethod
    def _range(cls, value: Any) -> Any:
        """A mapping is a ThresholdRange; say what is wrong with it (not why it is not a list either)."""
        if isinstance(value, list):
            return value
        if not isinstance(value, dict):
            raise invalid("give a list of thresholds or {start, stop[, step, scale]}")
        try:
            return ThresholdRange.model_validate(value)
        except pydantic.ValidationError as error:
            first = error.errors()[0]
            message = "unknown field" if first["type"] == "extra_forbidden" else first["msg"]
            key = (first.get("ctx") or {}).get("yaml_key")
            where = ".".join([*(str(part) for part in first["loc"]), *([key] if key else [])])
            raise (unread(where, message) if where else invalid(message)) from None

    @field_validator("thresholds")
    @classmethod
    def _thresholds(cls, value: list[int] | ThresholdRange) -> list[int] | ThresholdRange:
        if isinstance(value, list) and (not value or min(value) < 0 or len(value) > MAX_THRESHOLDS):
            raise invalid(f"give between 1 and {MAX_THRESHOLDS:,} thresholds, all >= 0")
        return value

    @field_validator("artifact_output_bug")
    @classmethod
    def _bug_only_for_paper_output(cls, value: bool, info: ValidationInfo) -> bool:
        if value and (info.data.get("method") != "paper" or info.data.get("rule") != "output"):
            raise invalid("only applies to method: paper with rule: output")
        return value

    @model_validator(mode="after")
    def _read(self) -> Scenario:
        """Refuse the settings the chosen method never reads."""
        key = changed(self, "cost_model", "out_of_range") if self.method == "paper" else None
        if key:
            raise unread(
                key, "read by method: per-request only; the paper method prices its own per-bin tables"
            )
        if self.workload.requests is None and changed(self, "seed"):
            raise unread(
                "seed",
                "(or --seed) draws workload.requests from the table; without it every record is priced "
                "once and the sweep's totals do not depend on the seed",
            )
        if self.method == "per-request" and changed(self, "paper_runtime"):
            raise unread(
                "paper_runtime", "read by method: paper only; per-request prices the profiles' cost model"
            )
        return self

    def threshold_values(self) -> np.ndarray:
        values = self.thresholds if isinstance(self.thresholds, list) else self.thresholds.values()
        return np.unique(np.asarray(values, dtype=np.int64))


def _costs(
    scenario: Scenario, workload: TokenLengths, labels: list[str], out_dir: Path, base_dir: Path | None = None
) -> tuple[np.ndarray, Any, dict[str, int], list[str]]:
    """(routing key, per-request costs, requests outside each profile/system's range, notes)."""
    profiles = [
        [load_profile(name, base_dir) for name in scenario.systems[label].profiles] for label in labels
    ]
    m, n = workload.input_tokens, workload.output_tokens
    if scenario.method == "paper":
        lengths, sweep_name = paper_lengths(m, n, scenario.rule, scenario.artifact_output_bug)
        tables = [
            per_bin_table(group, sweep_name, label, scenario.paper_runtime)
            for group, label in zip(profiles, labels, strict=True)
        ]
        notes = [
            f"paper method: per-bin mean energy per token of the {sweep_name} sweep (models pooled, weighted "
            f"by n_trials) times the request's {'input' if lengths is m else 'output'} length"
        ]
        if scenario.artifact_output_bug:
            tables = [artifact_output_table(table) for table in tables]
            notes.append(
                "artifact_output_bug: output-sweep bins looked up with INPUT lengths and bins >= 1024 "
                "dropped, as the artifact did; not a meaningful output-threshold analysis"
            )
        (out_dir / "per-bin.csv").write_text(
            "".join(
                table.to_frame().to_csv(index=False, header=i == 0, float_format="%.6g", lineterminator="\n")
                for i, table in enumerate(tables)
            ),
            encoding="utf-8",
        )
        outside = {label: table.outside(lengths) for label, table in zip(labels, tables, strict=True)}
        return lengths, paper_costs(lengths, *tables), outside, notes
    models = [
        [build_cost_model(profile, scenario.cost_model, scenario.out_of_range) for profile in group]
        for group in profiles
    ]
    outside = {
        profile.name: outside_range(model, m, n)
        for group, group_models in zip(profiles, models, strict=True)
        for profile, model in zip(group, group_models, strict=True)
    }
    if scenario.out_of_range == "error":
        refuse_out_of_range(profiles, models, outside, m, n)
    notes = [
        f"per-request method: mean over each system's profiles of the {scenario.cost_model} cost model's "
        f"E(m, n) and R(m, n); out_of_range: {scenario.out_of_range}"
    ]
    return routing_key(m, n, scenario.rule), per_request_costs(models[0], models[1], m, n), outside, notes


def refuse_out_of_range(
    profiles: list[list[Any]], models: list[list[Any]], outside: dict[str, int], m: np.ndarray, n: np.ndarray
) -> None:
    """With out_of_range: error, name the first profile the workload leaves, counting requests per axis."""
    for group, group_models in zip(profiles, models, strict=True):
        for profile, model in zip(group, group_models, strict=True):
            if outside[profile.name]:
                raise ProfileRangeError(
                    f"out_of_range: {outside_message(model, profile.name, m, n)}; "
                    "set out_of_range: clamp or extrapolate, or filter the workload (max_input_tokens, ...)"
                )


def _summary(
    scenario: Scenario,
    scenario_path: Path,
    workload: TokenLengths,
    labels: list[str],
    result: SweepResult,
    outside: dict[str, int],
    notes: list[str],
) -> dict[str, Any]:
    best = result.best_index
    best_energy = float(result.energy_j[best])
    baselines = {labels[0]: result.energy_all_a, labels[1]: result.energy_all_b}
    runtimes = {labels[0]: result.runtime_all_a, labels[1]: result.runtime_all_b}
    savings = {label: 100.0 * (value - best_energy) / value for label, value in baselines.items()}
    name = scenario.name or Path(scenario_path).stem
    threshold = int(result.thresholds[best])
    headline = (
        f"{name}: best T = {threshold} ({scenario.rule} rule, {scenario.method} method): "
        f"{best_energy / JOULES_PER_KWH:.4f} kWh for {len(workload):,} requests; saves "
        f"{savings[labels[1]]:.1f}% vs all-{labels[1]} ({baselines[labels[1]] / JOULES_PER_KWH:.4f} kWh) "
        f"and {savings[labels[0]]:.1f}% vs all-{labels[0]} ({baselines[labels[0]] / JOULES_PER_KWH:.4f} kWh)"
    )
    summary: dict[str, Any] = {
        "kind": scenario.kind,
        "scenario": name,
        "description": scenario.description,
        "scenario_file": str(scenario_path),
        "seed": scenario.seed,
        "method": scenario.method,
        "rule": scenario.rule,
        "lam": scenario.lam,
        "systems": {label: list(scenario.systems[label].profiles) for label in labels},
        "workload": {"name": workload.name, "requests": len(workload), "provenance": workload.provenance},
        "best_threshold": threshold,
        "best_energy_j": best_energy,
        "best_energy_kwh": best_energy / JOULES_PER_KWH,
        "best_runtime_s": float(result.runtime_s[best]),
        "best_requests_on_first_system": int(result.requests_on_a[best]),
        "baselines": baselines,
        "baselines_kwh": {k: v / JOULES_PER_KWH for k, v in baselines.items()},
        "baseline_runtimes_s": runtimes,
        "savings_vs_baseline_pct": savings,
        "runtime_ratio_vs_baseline": {k: float(result.runtime_s[best]) / v for k, v in runtimes.items()},
        "best_threshold_u": int(result.thresholds[result.best_u_index]),
        "best_cost_u": float(result.cost_u[result.best_u_index]),
        "cost_u_normalisation": U_NORMALISATION,
        "baseline_cost_u": {
            labels[0]: float(
                combined_cost(
                    result.energy_all_a,
                    result.runtime_all_a,
                    result.energy_all_b,
                    result.runtime_all_b,
                    scenario.lam,
                )
            ),
            labels[1]: 1.0,
        },
        "out_of_range": scenario.out_of_range if scenario.method == "per-request" else "clamp (paper bins)",
        "out_of_range_requests": outside,
        "thresholds": [
            {
                "threshold": int(t),
                "energy_j": float(e),
                "runtime_s": float(r),
                "cost_u": float(u),
                "requests_on_first_system": int(k),
            }
            for t, e, r, u, k in zip(
                result.thresholds,
                result.energy_j,
                result.runtime_s,
                result.cost_u,
                result.requests_on_a,
                strict=True,
            )
        ],
        "notes": notes,
        "headline": headline,
    }
    if "runtime_metric_artifact" in result.extra:
        summary["runtime_metric_artifact"] = {
            "best": float(result.extra["runtime_metric_artifact"][best]),
            "baselines": {
                labels[0]: result.extra_all_a["runtime_metric_artifact"],
                labels[1]: result.extra_all_b["runtime_metric_artifact"],
            },
            "meaning": "the artifact's token-weighted sum of length * bin runtime (not a time)",
        }
    return summary


def run(scenario: Scenario, out_dir: Path, scenario_path: Path) -> dict[str, Any]:
    """Sweep the thresholds, write sweep.csv and the plots into `out_dir`, return the summary."""
    # matplotlib is imported only when there is something to plot (validation errors stay fast).
    from ..report.threshold_plots import plot_threshold_sweep

    out_dir, scenario_path = Path(out_dir), Path(scenario_path)
    labels = list(scenario.systems)
    try:
        workload = build_workload(scenario.workload, scenario.seed, base_dir=scenario_path.parent)
        key, costs, outside, notes = _costs(scenario, workload, labels, out_dir, scenario_path.parent)
    except HybridsimError as error:  # say which scenario the problem is in
        raise type(error)(f"{scenario_path}: {error}") from None
    result = sweep(key, costs, scenario.threshold_values(), scenario.rule, scenario.lam)
    frame = result.to_frame()
    frame.to_csv(out_dir / "sweep.csv", index=False, float_format="%.6f", lineterminator="\n")
    title = (
        f"{scenario.name or scenario_path.stem}: {workload.name}, "
        f"{len(workload):,} requests ({scenario.method})"
    )
    plot_threshold_sweep(
        frame,
        {labels[0]: result.energy_all_a / JOULES_PER_KWH, labels[1]: result.energy_all_b / JOULES_PER_KWH},
        {labels[0]: result.runtime_all_a / 3600.0, labels[1]: result.runtime_all_b / 3600.0},
        scenario.rule,
        title,
        out_dir,
        result.best_index,
    )
    return _summary(scenario, scenario_path, workload, labels, result, outside, notes)
