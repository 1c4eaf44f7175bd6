"""How a calibration run keeps account, the same for the request sweep and the serving sweep.

A setting ends in one of a few ways (measured to the stopping rule, or one of `TERMINAL_STATUSES`); each
trial is one row of a trials file with every column present; an invocation reports what it did as a
`RunSummary`; and a progress bar shows the settings as they are visited. `protocol.py` (requests) and
`serving_protocol.py` (passes) both use these, so that the two sweeps count and record alike.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

TERMINAL_STATUSES = ("oom", "skipped", "error")
"""The statuses that end a setting without a measurement (it is not retried in the same run)."""


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


def progress_bar(total: int, enabled: bool) -> Any:
    """A bar over the planned settings (tqdm; off when `enabled` is false)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="setting", disable=not enabled, dynamic_ncols=True, leave=True)
