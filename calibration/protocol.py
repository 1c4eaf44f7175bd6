"""The paper's measurement protocol (§5.2): visiting the planned settings, recording every trial, resuming.

The settings, their order and the stopping rule are in `plan.py`. Each visit to a setting starts with
warm-up trials (recorded with `warmup = True`, excluded from the profile), then repeats the setting until
the plan's stopping rule says it is done.

Every trial is appended to `<out>/trials.csv` the moment it ends, and the profile (points.csv,
profile.json) is rewritten from trials.csv after each setting, so a run stopped by Ctrl-C, a crash or a
time budget keeps what it measured; `resume` skips settings already finished and continues the rest. An
out-of-memory trial is recorded (`status = oom`) and larger settings of the same sweep are recorded as
`skipped`; the run goes on with the others.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from hybridsim.core.profile_io import append_trials, read_trials

from .budget import RuntimeEstimator
from .fitting import is_true
from .meters.common import EnergyMeter
from .plan import ProtocolConfig, Setting, is_converged, plan_settings
from .runner import BudgetExhausted, OutOfMemory, Runner
from .stopping import ci_halfwidth

TERMINAL_STATUSES = ("oom", "skipped", "error")

TRIAL_COLUMNS: tuple[str, ...] = (
    "sweep",
    "input_tokens",
    "output_tokens",
    "trial",
    "warmup",
    "status",
    "runtime_s",
    "cpu_energy_j",
    "gpu_energy_j",
    "energy_j",
    "actual_input_tokens",
    "actual_output_tokens",
    "batch_size",
    "total_tokens",
    "energy_per_token_j",
    "peak_memory_mb",
    "meter_method",
    "estimated",
    "samples",
    "energy_by_domain_j",
    "gross_energy_j",
    "started_at",
    "message",
)


@dataclass
class SettingState:
    """What trials.csv already holds for one setting."""

    warm_runtimes: list[float] = field(default_factory=list)
    warmup_runtimes: list[float] = field(default_factory=list)
    trials: int = 0
    terminal: str | None = None
    """'oom', 'skipped' or 'error' once the setting cannot be measured in this run."""


def setting_states(trials: pd.DataFrame) -> dict[tuple[int, int], SettingState]:
    """Group the trials recorded so far by (m, n)."""
    states: dict[tuple[int, int], SettingState] = {}
    if trials.empty:
        return states
    for row in trials.assign(warmup=is_true(trials["warmup"])).itertuples(index=False):
        state = states.setdefault((int(row.input_tokens), int(row.output_tokens)), SettingState())
        state.trials = max(state.trials, int(row.trial) + 1)
        if row.status in TERMINAL_STATUSES:
            state.terminal = str(row.status)
        elif row.status == "ok":
            runtimes = state.warmup_runtimes if row.warmup else state.warm_runtimes
            runtimes.append(float(row.runtime_s))
    return states


@dataclass
class RunSummary:
    """What one invocation did."""

    settings_planned: int
    settings_done: int = 0
    settings_oom: int = 0
    settings_skipped: int = 0
    settings_failed: int = 0
    settings_left: list[tuple[str, float | None]] = field(default_factory=list)
    """Settings not finished (time budget), which `--resume` will continue, with the estimated seconds
    their warm-ups and minimum trials need."""
    trials_run: int = 0
    stopped_for_budget: bool = False
    elapsed_s: float = 0.0

    def count_finished(self, terminal: str | None) -> None:
        """Count one finished setting by how it ended (None: measured to the stopping rule)."""
        if terminal == "oom":
            self.settings_oom += 1
        elif terminal == "skipped":
            self.settings_skipped += 1
        elif terminal == "error":
            self.settings_failed += 1
        else:
            self.settings_done += 1


TrialCallback = Callable[[], object]


def run_protocol(
    runner: Runner,
    meter: EnergyMeter,
    out_dir: Path,
    config: ProtocolConfig,
    *,
    kv_cache: bool = True,
    after_setting: TrialCallback | None = None,
    progress: bool = True,
    clock: Callable[[], float] = time.monotonic,
) -> RunSummary:
    """Measure every planned setting not yet finished in `out_dir/trials.csv`, appending as it goes.

    With a time budget, a setting whose warm-up and minimum trials would not fit in the time left is
    deferred (not recorded: `--resume` measures it later) and retried once the others are done, when the
    estimates are better. When nothing has been measured yet, the cheapest pending setting goes first so
    that the estimates have something to start from. `after_setting` is called after each setting (the CLI
    rewrites the profile there). A KeyboardInterrupt propagates with every finished trial on disk.
    """
    plan = plan_settings(config)
    states = setting_states(read_trials(out_dir))
    estimator = RuntimeEstimator(kv_cache)
    oom_keys: dict[str, list[tuple[int, int]]] = {}
    for setting in plan:
        state = states.get(setting.key)
        if state is None:
            continue
        for runtime in state.warm_runtimes:
            estimator.record(setting.key, runtime)
        for runtime in state.warmup_runtimes:
            estimator.record(setting.key, runtime, warmup=True)
        if state.terminal == "oom":
            _note_oom(oom_keys, setting)
    summary = RunSummary(settings_planned=len(plan))
    started = clock()
    deadline = None if config.time_budget_s is None else started + config.time_budget_s
    pending = list(plan)
    if deadline is not None and not estimator.measured:
        unfinished = [s for s in pending if not _finished(states.get(s.key), config)]
        if unfinished:
            cheapest = min(unfinished, key=lambda s: estimator.work(*s.key))
            pending.remove(cheapest)
            pending.insert(0, cheapest)
    bar = _progress_bar(len(plan), progress)
    expired = False
    try:
        while pending and not expired:
            deferred: list[Setting] = []
            for setting in pending:
                state = states.setdefault(setting.key, SettingState())
                bar.set_description(setting.label())
                if _finished(state, config):
                    summary.count_finished(state.terminal)
                    bar.update(1)
                    continue
                if expired:
                    deferred.append(setting)
                    continue
                blocker = _larger_than_oom(setting, oom_keys) if config.skip_larger_after_oom else None
                if blocker is not None:
                    _append(
                        out_dir,
                        setting,
                        state,
                        status="skipped",
                        message=(
                            f"not run: larger than m={blocker[0]} n={blocker[1]}, which ran out of memory"
                        ),
                    )
                    state.terminal = "skipped"
                    summary.count_finished(state.terminal)
                    bar.update(1)
                    continue
                eta = f"~{_eta(pending, states, config, estimator)} left"
                outcome = _measure_setting(
                    runner,
                    meter,
                    out_dir,
                    setting,
                    state,
                    config,
                    estimator,
                    deadline,
                    clock,
                    summary,
                    bar,
                    eta,
                )
                if outcome in ("budget", "deadline"):
                    expired = outcome == "deadline"
                    deferred.append(setting)
                    if after_setting is not None and state.trials:
                        after_setting()
                    continue
                if outcome == "oom":
                    _note_oom(oom_keys, setting)
                summary.count_finished(state.terminal)
                if after_setting is not None:
                    after_setting()
                bar.update(1)
            if len(deferred) == len(pending):
                break
            pending = deferred
        if pending:
            summary.stopped_for_budget = True
            for setting in pending:
                state = states[setting.key]
                estimate = estimator.visit_s(
                    setting.key, config.warmup, max(1, config.min_trials - len(state.warm_runtimes))
                )
                summary.settings_left.append((setting.label(), estimate))
    finally:
        bar.close()
        summary.elapsed_s = clock() - started
    return summary


def _eta(
    settings: list[Setting],
    states: dict[tuple[int, int], SettingState],
    config: ProtocolConfig,
    estimator: RuntimeEstimator,
) -> str:
    """Rough time left: warm-ups plus minimum trials of every unfinished setting, at the estimated rate."""
    seconds = 0.0
    for setting in settings:
        state = states.get(setting.key)
        if _finished(state, config):
            continue
        done = len(state.warm_runtimes) if state else 0
        estimate = estimator.visit_s(setting.key, config.warmup, max(1, config.min_trials - done))
        if estimate is None:
            return "?"
        seconds += estimate
    return f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"


def _finished(state: SettingState | None, config: ProtocolConfig) -> bool:
    if state is None:
        return False
    return state.terminal is not None or (state.trials > 0 and is_converged(state.warm_runtimes, config))


def _measure_setting(
    runner: Runner,
    meter: EnergyMeter,
    out_dir: Path,
    setting: Setting,
    state: SettingState,
    config: ProtocolConfig,
    estimator: RuntimeEstimator,
    deadline: float | None,
    clock: Callable[[], float],
    summary: RunSummary,
    bar: Any,
    eta: str,
) -> str:
    """Warm up, then repeat until converged; returns 'done', 'oom', 'error', 'budget' (would not fit) or
    'deadline' (the runner abandoned a trial at the hard deadline).

    Under a deadline the first trial of the visit needs time for the warm-ups plus the missing minimum
    trials; every later trial only for itself.
    """
    warmups_left = config.warmup
    first = True
    while True:
        warmup = warmups_left > 0
        if deadline is not None:
            missing = max(1, config.min_trials - len(state.warm_runtimes)) if first else int(not warmup)
            needed = estimator.visit_s(setting.key, warmups_left if first else int(warmup), missing) or 0.0
            now = clock()
            if now >= deadline or now + needed > deadline:
                return "budget"
        first = False
        bar.set_postfix_str(_postfix(state, config, warmup, eta), refresh=True)
        started_at = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        try:
            result = runner.run_trial(setting.input_tokens, setting.output_tokens, meter)
        except BudgetExhausted:
            return "deadline"  # the runner's hard deadline: the abandoned trial is not recorded
        except OutOfMemory as error:
            _append(
                out_dir,
                setting,
                state,
                status="oom",
                warmup=warmup,
                message=str(error)[:300],
                started_at=started_at,
            )
            state.terminal = "oom"
            summary.trials_run += 1
            return "oom"
        summary.trials_run += 1
        if (result.output_tokens, result.input_tokens) != (setting.output_tokens, setting.input_tokens):
            # Deterministic for a given model: repeating it would only repeat the error.
            _append(
                out_dir,
                setting,
                state,
                status="error",
                warmup=warmup,
                result=result,
                started_at=started_at,
                message=f"generated {result.output_tokens} of {setting.output_tokens} tokens "
                f"from {result.input_tokens} of {setting.input_tokens}",
            )
            state.terminal = "error"
            return "error"
        _append(out_dir, setting, state, status="ok", warmup=warmup, result=result, started_at=started_at)
        estimator.record(setting.key, result.runtime_s, warmup=warmup)
        if warmup:
            warmups_left -= 1
            continue
        state.warm_runtimes.append(result.runtime_s)
        if is_converged(state.warm_runtimes, config):
            return "done"


def _append(
    out_dir: Path,
    setting: Setting,
    state: SettingState,
    *,
    status: str,
    warmup: bool = False,
    result: Any = None,
    message: str = "",
    started_at: str = "",
) -> None:
    row = trial_row(
        TRIAL_COLUMNS,
        {
            "sweep": setting.sweep,
            "input_tokens": setting.input_tokens,
            "output_tokens": setting.output_tokens,
        },
        trial=state.trials,
        warmup=warmup,
        status=status,
        message=message,
        started_at=started_at,
    )
    if result is not None:
        measurement = result.measurement
        total_tokens = result.batch_size * (result.input_tokens + result.output_tokens)
        energy = measurement.total_energy_j
        row.update(
            runtime_s=result.runtime_s,
            cpu_energy_j=measurement.cpu_energy_j,
            gpu_energy_j=measurement.gpu_energy_j,
            energy_j=energy,
            actual_input_tokens=result.input_tokens,
            actual_output_tokens=result.output_tokens,
            batch_size=result.batch_size,
            total_tokens=total_tokens,
            energy_per_token_j=energy / total_tokens if total_tokens else "",
            peak_memory_mb="" if result.peak_memory_mb is None else round(result.peak_memory_mb, 1),
            meter_method=measurement.method,
            estimated=measurement.estimated,
            samples=measurement.samples,
            energy_by_domain_j=json.dumps(measurement.energy_j, sort_keys=True),
            gross_energy_j=""
            if measurement.gross_energy_j is None
            else sum(measurement.gross_energy_j.values()),
        )
    append_trials(out_dir, [row])
    state.trials += 1


def trial_row(
    columns: tuple[str, ...],
    setting: dict[str, Any],
    *,
    trial: int,
    warmup: bool,
    status: str,
    message: str,
    started_at: str,
) -> dict[str, Any]:
    """One row of a trials file, every column present (empty until filled): the setting's keys, then the
    trial's number, status and start (now, unless given). Shared by the request and the serving sweep."""
    row: dict[str, Any] = dict.fromkeys(columns, "")
    row.update(
        setting,
        trial=trial,
        warmup=warmup,
        status=status,
        message=message,
        started_at=started_at or _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    )
    return row


def _note_oom(oom_keys: dict[str, list[tuple[int, int]]], setting: Setting) -> None:
    """Remember a setting that ran out of memory under each sweep it belongs to."""
    for sweep in setting.sweep.split("+"):
        oom_keys.setdefault(sweep, []).append(setting.key)


def _larger_than_oom(setting: Setting, oom_keys: dict[str, list[tuple[int, int]]]) -> tuple[int, int] | None:
    """An OOM'd setting of the same sweep that this one dominates (no smaller in m or n), if any."""
    for sweep in setting.sweep.split("+"):
        for m, n in oom_keys.get(sweep, []):
            if setting.input_tokens >= m and setting.output_tokens >= n and setting.key != (m, n):
                return (m, n)
    return None


def _postfix(state: SettingState, config: ProtocolConfig, warmup: bool, eta: str) -> str:
    if warmup:
        return f"warm-up, {eta}"
    width = ci_halfwidth(state.warm_runtimes, config.confidence)
    ci = "-" if math.isinf(width) else f"{width:.3f}s"
    return f"trial {len(state.warm_runtimes) + 1}/{config.max_trials} ci±{ci}, {eta}"


def _progress_bar(total: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="setting", disable=not enabled, dynamic_ncols=True, leave=True)
