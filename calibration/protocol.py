"""The paper's measurement protocol (§5.2): visiting the planned settings, recording every trial, resuming.

The settings, their order and the stopping rule are in `plan.py`. Each visit to a setting starts with
warm-up trials (recorded with `warmup = True`, excluded from the profile), then repeats the setting until
the plan's stopping rule says it is done.

Every trial is appended to `<out>/trials.csv` the moment it ends (the file's format: `trials_file.py`),
and the profile (points.csv, profile.json) is rewritten from trials.csv after each setting, so a run
stopped by Ctrl-C, a crash or a time budget keeps what it measured; `resume` skips settings already
finished and continues the rest. An out-of-memory trial is recorded (`status = oom`) and larger settings
of the same sweep are recorded as `skipped`; the run goes on with the others. What the run did comes back
as a `RunSummary` (`trial_log.py`, shared with the serving sweep).
"""

from __future__ import annotations

import datetime as _dt
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hybridsim.core.profile_io import read_trials

from .budget import RuntimeEstimator
from .meters.common import EnergyMeter
from .plan import ProtocolConfig, Setting, is_converged, plan_settings
from .runner import BudgetExhausted, OutOfMemory, Runner
from .stopping import ci_halfwidth
from .trial_log import RunSummary, progress_bar
from .trials_file import SettingState, append_trial, setting_states

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
    bar = progress_bar(len(plan), progress)
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
                    append_trial(
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
            append_trial(
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
            append_trial(
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
        append_trial(
            out_dir, setting, state, status="ok", warmup=warmup, result=result, started_at=started_at
        )
        estimator.record(setting.key, result.runtime_s, warmup=warmup)
        if warmup:
            warmups_left -= 1
            continue
        state.warm_runtimes.append(result.runtime_s)
        if is_converged(state.warm_runtimes, config):
            return "done"


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
