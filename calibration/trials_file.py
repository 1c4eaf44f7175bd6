"""The request sweep's trials.csv: its columns, the row one trial adds, and what a resumed run reads back.

Every trial of `hybridsim calibrate` is one row, appended the moment the trial ends (`append_trial`); a
run that resumes groups the rows already there by setting (`setting_states`) to know which settings are
finished and how long their trials took. The serving sweep keeps its own file (`serving_protocol.py`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from hybridsim.core.profile_io import append_trials

from .fitting import is_true
from .plan import Setting
from .trial_log import TERMINAL_STATUSES, trial_row

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


def append_trial(
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
    """Append one trial of `setting` to `out_dir/trials.csv` (with the runner's `result`, when it gave one)
    and count it in `state`."""
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
