"""From trials to a profile: `trials.csv` -> `points.csv` + `profile.json`, the format the simulator reads.

The calibration directory is a profile directory that grows: the protocol appends to `trials.csv`, and
this module rewrites `points.csv` and `profile.json` from all of it (cheap, so after every setting). What
describes the run and does not change while it goes on (system, model, meter, command line, host) sits in
`calibration.json`, written once when the run starts and checked again on `--resume`.

Aggregation: per (m, n), over warm trials with status 'ok', mean and sample std (ddof 1; empty with one
trial) of runtime, CPU, GPU and total energy, the mean energy per token (energy / tokens in and out, the
paper's EPT) and the 95% CI half-width of the runtime. A setting measured once for two sweeps (the anchor,
`sweep = input+output`) gives one row per sweep with the same numbers. Settings that could not be
measured keep a row with their status ('oom', 'skipped', 'error') and no means.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hybridsim.core.atomic import write_text_atomic
from hybridsim.core.errors import HybridsimError
from hybridsim.core.jsonstyle import dump_json
from hybridsim.core.profile_io import TRIALS_FILE, read_trials, save_profile_dir
from hybridsim.core.profile_model import Profile, ProfileMetadata

from .fitting import fit_report, is_true, paper_fit, warm_trials
from .stopping import ci_halfwidth
from .trial_log import TERMINAL_STATUSES

CALIBRATION_FILE = "calibration.json"
QUANTITIES = ("runtime_s", "cpu_energy_j", "gpu_energy_j", "energy_j")
RESUME_KEYS = ("model", "arch", "dtype", "device", "batch_size", "kv_cache", "meter", "seed")
"""Settings that must match for `--resume` to add trials to the same profile."""
FIXED_PROTOCOL_KEYS = ("fixed_input", "fixed_output")
"""Protocol settings that define what a sweep's trials mean: they must match too."""
EXTENSIBLE_PROTOCOL_KEYS = ("input_tokens", "output_tokens", "grid")
"""Protocol settings a resume may extend: new lengths (or the grid) are measured, finished ones kept.
The stopping rule (--ci-halfwidth, --min-trials, --max-trials, --warmup) may change too: it applies to
the settings not finished yet, and a finished setting is never re-opened."""


@dataclass(frozen=True)
class CalibrationContext:
    """Everything about a calibration run that is not a trial: what, where, how measured, by which command."""

    system: str
    device_name: str
    model: str
    dtype: str
    meter: str
    energy_scope: str
    estimated: bool
    kv_cache: bool
    batch_size: int
    command: str
    run: dict[str, Any] = field(default_factory=dict)
    """The options that define the run (`RESUME_KEYS` and the protocol's settings)."""
    idle_power_w: float | None = None
    idle_power_source: str = "unknown"
    notes: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    """Host, CPU, accelerators, driver, library versions, runner description."""


def run_record(
    info: dict[str, Any], description: dict[str, Any], warm_s: float, meter: Any
) -> dict[str, Any]:
    """A run's record of what it ran on (`CalibrationContext.extra`): host, model runner, meter.

    The same for the request sweep and `calibrate --serving`, which adds its own `serving` entry.
    """
    describe_meter = getattr(meter, "describe", None)
    return {
        "system_info": info,
        "runner": {**description, "global_warm_up_s": round(warm_s, 3)},
        "meter": describe_meter() if describe_meter else {"meter": meter.name},
    }


def measured_metadata(context: CalibrationContext, first: str, last: str, **rest: Any) -> ProfileMetadata:
    """A calibrated profile's metadata: what `context` says was measured, by which command, from `first`
    to `last` (dates); `rest` is what differs between the request sweep and `calibrate --serving`."""
    return ProfileMetadata(
        system=context.system,
        device=context.device_name,
        model=context.model,
        dtype=context.dtype,
        meter=context.meter,
        energy_scope=context.energy_scope,
        provenance=f"measured by `{context.command}` from {first} to {last}",
        date=first,
        **rest,
    )


def save_context(out_dir: Path, context: CalibrationContext) -> None:
    write_text_atomic(Path(out_dir) / CALIBRATION_FILE, dump_json(asdict(context)))


def load_context(out_dir: Path) -> CalibrationContext | None:
    path = Path(out_dir) / CALIBRATION_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        data["notes"] = tuple(data.get("notes", ()))
        return CalibrationContext(**data)
    except (json.JSONDecodeError, TypeError) as error:
        raise HybridsimError(f"{path}: unreadable calibration record: {error}") from None


def check_resumable(previous: CalibrationContext, run: Mapping[str, Any], out_dir: Path) -> None:
    """Refuse to mix trials of different models, dtypes, devices or meters in one profile."""
    differ = [
        f"{key} {previous.run.get(key)!r} -> {run.get(key)!r}"
        for key in RESUME_KEYS
        if previous.run.get(key) != run.get(key)
    ]
    before, now = previous.run.get("protocol") or {}, run.get("protocol") or {}
    differ += [
        f"{key} {before.get(key)!r} -> {now.get(key)!r}"
        for key in FIXED_PROTOCOL_KEYS
        if key in before and before.get(key) != now.get(key)
    ]
    if differ:
        raise HybridsimError(
            f"{out_dir}: --resume with different settings ({'; '.join(differ)}); "
            "the trials would not be comparable; use another --out"
        )


def extended_run(previous: CalibrationContext, run: Mapping[str, Any]) -> dict[str, Any]:
    """The run record after a compatible resume: the sweeps are the union of both runs' lengths."""
    before, now = previous.run.get("protocol") or {}, dict(run.get("protocol") or {})
    for key in ("input_tokens", "output_tokens"):
        if key in before and key in now:
            now[key] = sorted({*before[key], *now[key]})
    if "grid" in before:
        now["grid"] = bool(before["grid"]) or bool(now.get("grid"))
    return {**run, "protocol": now}


def resumable_context(out_dir: Path, run: Mapping[str, Any]) -> CalibrationContext | None:
    """The calibration that `--resume` continues in `out_dir` (None where there is none yet), checked
    against this run; trials without a calibration record cannot be checked and are refused."""
    previous = load_context(out_dir)
    if previous is None and (Path(out_dir) / TRIALS_FILE).exists():
        raise HybridsimError(
            f"{out_dir}: {TRIALS_FILE} without {CALIBRATION_FILE}: cannot tell which model, "
            "dtype, device and meter made those trials; use another --out or --overwrite"
        )
    if previous is not None:
        check_resumable(previous, run, out_dir)
    return previous


def aggregate_points(trials: pd.DataFrame) -> pd.DataFrame:
    """One row per (sweep, m, n) in the points.csv format."""
    empty = pd.DataFrame(
        columns=["sweep", "input_tokens", "output_tokens", "n_trials"]
        + [f"{q}_{s}" for q in QUANTITIES for s in ("mean", "std")]
    )
    if trials.empty:
        return empty
    trials = trials.copy()
    trials["status"] = trials["status"].fillna("ok").astype(str)
    trials["is_warmup"] = is_true(trials["warmup"])
    warm_keys = warm_trials(trials)
    rows: list[dict[str, Any]] = []
    for (m, n), group in trials.groupby(["input_tokens", "output_tokens"], sort=True):
        warm = warm_keys.loc[warm_keys.index.intersection(group.index)]
        failed = [s for s in TERMINAL_STATUSES if (group["status"] == s).any()]
        if warm.empty and not failed:
            continue  # only warm-ups so far: nothing to report yet
        row: dict[str, Any] = {
            "input_tokens": int(m),
            "output_tokens": int(n),
            "n_trials": int(len(warm)),
            "status": failed[0] if failed else "ok",
            "n_warmup_excluded": int((group["is_warmup"] & (group["status"] == "ok")).sum()),
        }
        for quantity in QUANTITIES:
            values = warm[quantity].astype(float)
            row[f"{quantity}_mean"] = float(values.mean()) if len(values) else math.nan
            row[f"{quantity}_std"] = float(values.std(ddof=1)) if len(values) > 1 else math.nan
        row["runtime_s_ci95_halfwidth"] = _finite(ci_halfwidth(warm["runtime_s"].astype(float).tolist()))
        for column in ("energy_per_token_j", "total_tokens"):
            row[f"{column}_mean"] = float(warm[column].astype(float).mean()) if len(warm) else math.nan
        peak = pd.to_numeric(group["peak_memory_mb"], errors="coerce")
        row["peak_memory_mb_max"] = float(peak.max()) if peak.notna().any() else math.nan
        sweeps = sorted({part for value in group["sweep"].astype(str).unique() for part in value.split("+")})
        rows.extend({"sweep": sweep, **row} for sweep in sweeps)
    if not rows:
        return empty
    points = pd.DataFrame(rows)
    return points.sort_values(["sweep", "input_tokens", "output_tokens"]).reset_index(drop=True)


def build_profile(name: str, trials: pd.DataFrame, context: CalibrationContext) -> Profile:
    """The profile of everything measured so far."""
    points = aggregate_points(trials)
    estimated = context.estimated or bool(is_true(trials.get("estimated", pd.Series(dtype=str))).any())
    dates = (
        pd.to_datetime(trials["started_at"], errors="coerce", utc=True).dropna()
        if not trials.empty
        else pd.Series([], dtype="datetime64[ns, UTC]")
    )
    first = dates.min() if len(dates) else _dt.datetime.now(_dt.timezone.utc)
    last = dates.max() if len(dates) else first
    fit = paper_fit(
        trials,
        context.energy_scope,
        source=f"least squares over warm trials of this calibration ({context.command})",
    )
    if fit is not None:
        warm = warm_trials(trials)
        fit = replace(
            fit,
            input_range=(float(warm["input_tokens"].min()), float(warm["input_tokens"].max())),
            output_range=(float(warm["output_tokens"].min()), float(warm["output_tokens"].max())),
        )
    statuses = trials["status"].fillna("ok").astype(str).value_counts().to_dict() if not trials.empty else {}
    notes = list(context.notes)
    if estimated:
        notes.append("energies are ESTIMATED (no energy counter was read): a model, not a measurement")
    extra = {
        **context.extra,
        "command": context.command,
        "run": context.run,
        "first_trial": first.isoformat(),
        "last_trial": last.isoformat(),
        "trials_by_status": {str(k): int(v) for k, v in statuses.items()},
        "meter_methods": sorted(
            {str(m) for m in trials.get("meter_method", pd.Series(dtype=str)).dropna() if m}
        ),
        "fits": fit_report(trials),
    }
    metadata = measured_metadata(
        context,
        first.date().isoformat(),
        last.date().isoformat(),
        idle_power_w=context.idle_power_w,
        idle_power_source=context.idle_power_source,
        kv_cache=context.kv_cache,
        batch_size=context.batch_size,
        estimated=estimated,
        notes=tuple(notes),
        extra=_json_ready(extra),
    )
    return Profile(name=name, metadata=metadata, points=points, paper_fit=fit)


def write_profile(out_dir: Path, context: CalibrationContext | None = None) -> Profile | None:
    """Rewrite points.csv and profile.json from trials.csv; None while nothing has been measured yet."""
    out_dir = Path(out_dir)
    context = context or load_context(out_dir)
    if context is None:
        raise HybridsimError(f"{out_dir}: no {CALIBRATION_FILE}: not a calibration directory")
    trials = read_trials(out_dir)
    if trials.empty:
        return None
    profile = build_profile(out_dir.name, trials, context)
    if profile.points.empty:
        return None
    save_profile_dir(profile, out_dir)
    return profile


def _finite(value: float) -> float:
    return value if math.isfinite(value) else math.nan


def _json_ready(value: Any) -> Any:
    """Replace NaN and infinities (which JSON cannot hold) with None, recursively."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value
