"""Running a serving sweep: every planned pass measured until its CI is tight, every trial kept, resumable.

The same discipline as the request-level protocol (`protocol.py`), for passes instead of requests:
warm-up trials first (recorded, excluded), then trials until the plan's stopping rule says done. One
difference: the sweep goes round the unfinished settings one trial at a time (in the plan's seeded
order) rather than finishing one setting before the next, so that a stretch of slow machine (another job,
heat) slows every setting's trials alike instead of one setting's mean; passes last milliseconds, so
such stretches span many trials. Every trial is appended to `<out>/serving_trials.csv` the moment it
ends and the profile is rewritten after each round, so an interrupted run keeps what it measured and
`resume` carries on where it stopped.

Out of memory at a batch size ends that row: the pass is recorded (`status = oom`) and every setting of
the same table at least as large in both batch size and length is recorded as `skipped`, without being
tried; the run goes on with the rest. Under a time budget a trial that would not fit in the time left is
not started (the rest is left to `--resume`); the runner's hard deadline abandons one that overruns.
"""

from __future__ import annotations

import datetime as _dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from hybridsim.core.profile_io import append_trials, read_trials

from .fitting import is_true
from .meters.common import EnergyMeter
from .runner import BudgetExhausted, OutOfMemory
from .serving_plan import ServingConfig, ServingSetting, is_converged, plan_serving
from .trial_log import TERMINAL_STATUSES, RunSummary, progress_bar, trial_row

SERVING_TRIALS_FILE = "serving_trials.csv"
TRIAL_COLUMNS: tuple[str, ...] = (
    "table",
    "batch_size",
    "tokens_per_request",
    "total_tokens",
    "trial",
    "warmup",
    "status",
    "time_s",
    "cpu_energy_j",
    "gpu_energy_j",
    "energy_j",
    "repeats",
    "peak_memory_mb",
    "meter_method",
    "estimated",
    "energy_by_domain_j",
    "started_at",
    "message",
)


class PassRunner(Protocol):
    """What the protocol needs from a serving runner; tests substitute fakes."""

    min_window_s: float

    def run_trial(self, setting: ServingSetting, meter: EnergyMeter) -> Any: ...


@dataclass
class PassState:
    """What serving_trials.csv already holds for one setting."""

    warm_times: list[float] = field(default_factory=list)
    trials: int = 0
    terminal: str | None = None


def pass_states(trials: pd.DataFrame) -> dict[tuple[str, int, int], PassState]:
    """Group the trials recorded so far by (table, batch size, tokens per request)."""
    states: dict[tuple[str, int, int], PassState] = {}
    if trials.empty:
        return states
    for row in trials.assign(warmup=is_true(trials["warmup"])).itertuples(index=False):
        key = (str(row.table), int(row.batch_size), int(row.tokens_per_request))
        state = states.setdefault(key, PassState())
        state.trials = max(state.trials, int(row.trial) + 1)
        if row.status in TERMINAL_STATUSES:
            state.terminal = str(row.status)
        elif row.status == "ok" and not row.warmup:
            state.warm_times.append(float(row.time_s))
    return states


def run_serving_protocol(
    runner: PassRunner,
    meter: EnergyMeter,
    out_dir: Path,
    config: ServingConfig,
    *,
    after_setting: Callable[[], object] | None = None,
    progress: bool = True,
    clock: Callable[[], float] = time.monotonic,
) -> RunSummary:
    """Measure every planned setting not yet finished in `out_dir/serving_trials.csv` (module docstring)."""
    plan = plan_serving(config)
    states = pass_states(read_trials(out_dir, SERVING_TRIALS_FILE))
    ooms = [key for key, state in states.items() if state.terminal == "oom"]
    summary = RunSummary(settings_planned=len(plan))
    started = clock()
    deadline = None if config.time_budget_s is None else started + config.time_budget_s
    longest = max((max(s.warm_times) for s in states.values() if s.warm_times), default=0.0)
    bar = progress_bar(len(plan), progress)
    visited: set[tuple[str, int, int]] = set()
    pending: list[ServingSetting] = []
    for setting in plan:
        if _finished(states.get(setting.key), config):
            summary.count_finished(states[setting.key].terminal)
            bar.update(1)
        else:
            pending.append(setting)
    try:
        while pending and not summary.stopped_for_budget:
            still: list[ServingSetting] = []
            for setting in pending:
                state = states.setdefault(setting.key, PassState())
                bar.set_description(setting.label())
                blocker = _dominating_oom(setting, ooms)
                if blocker is not None:
                    _append(
                        out_dir,
                        setting,
                        state,
                        status="skipped",
                        message=f"not run: at least as large as {blocker[0]} b={blocker[1]} x {blocker[2]}, "
                        "which ran out of memory",
                    )
                    state.terminal = "skipped"
                elif not summary.stopped_for_budget:
                    # Warm-ups on the first visit of this run (a resumed run has a freshly built model).
                    warmups = 0 if setting.key in visited else config.warmup
                    visited.add(setting.key)
                    for warmup in [True] * warmups + [False]:
                        # A trial lasts about the window (or one pass, if longer), plus a decode's prefill.
                        needed = 2.0 * max(runner.min_window_s, longest) + 0.5
                        if deadline is not None and clock() + needed > deadline:
                            summary.stopped_for_budget = True
                            break
                        outcome = _one_trial(runner, meter, out_dir, setting, state, warmup=warmup)
                        summary.trials_run += outcome != "deadline"
                        if outcome == "deadline":
                            summary.stopped_for_budget = True
                            break
                        if outcome == "oom":
                            ooms.append(setting.key)
                            break
                        if not warmup:
                            longest = max(longest, state.warm_times[-1])
                if _finished(state, config):
                    summary.count_finished(state.terminal)
                    bar.update(1)
                else:
                    still.append(setting)
            pending = still
            if after_setting is not None:
                after_setting()
        summary.settings_left = [(s.label(), None) for s in pending]
    finally:
        bar.close()
        summary.elapsed_s = clock() - started
    return summary


def _one_trial(
    runner: PassRunner,
    meter: EnergyMeter,
    out_dir: Path,
    setting: ServingSetting,
    state: PassState,
    warmup: bool,
) -> str:
    """Run and record one trial: 'ok', 'oom' or 'deadline' (abandoned, not recorded)."""
    started_at = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    try:
        result = runner.run_trial(setting, meter)
    except BudgetExhausted:
        return "deadline"
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
        return "oom"
    _append(out_dir, setting, state, status="ok", warmup=warmup, result=result, started_at=started_at)
    if not warmup:
        state.warm_times.append(float(result.time_s))
    return "ok"


def _finished(state: PassState | None, config: ServingConfig) -> bool:
    if state is None:
        return False
    return state.terminal is not None or (state.trials > 0 and is_converged(state.warm_times, config))


def _dominating_oom(setting: ServingSetting, ooms: list[tuple[str, int, int]]) -> tuple[str, int, int] | None:
    """An out-of-memory setting of the same table that this one is at least as large as, if any."""
    for table, batch, length in ooms:
        if (
            table == setting.table
            and setting.batch_size >= batch
            and setting.tokens_per_request >= length
            and setting.key != (table, batch, length)
        ):
            return (table, batch, length)
    return None


def _append(
    out_dir: Path,
    setting: ServingSetting,
    state: PassState,
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
            "table": setting.table,
            "batch_size": setting.batch_size,
            "tokens_per_request": setting.tokens_per_request,
            "total_tokens": setting.total_tokens,
        },
        trial=state.trials,
        warmup=warmup,
        status=status,
        message=message,
        started_at=started_at,
    )
    if result is not None:
        measurement = result.measurement
        row.update(
            time_s=result.time_s,
            cpu_energy_j=result.cpu_energy_j,
            gpu_energy_j=result.gpu_energy_j,
            energy_j=result.cpu_energy_j + result.gpu_energy_j,
            repeats=result.repeats,
            peak_memory_mb="" if result.peak_memory_mb is None else round(result.peak_memory_mb, 1),
            meter_method=measurement.method,
            estimated=measurement.estimated,
            energy_by_domain_j=json.dumps(measurement.gross_energy_j or measurement.energy_j, sort_keys=True),
        )
    append_trials(out_dir, [row], SERVING_TRIALS_FILE)
    state.trials += 1
