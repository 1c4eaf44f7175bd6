"""AMD CPUs: per-core power from an AMD uProf timechart, attributed to the cores our process ran on (eq. 8).

`AMDuProfCLI timechart --event power --interval 100 -o DIR` records, every interval, the power of each
core (`core<N>-power`, W) as the CPU's power management firmware reports it, and writes `timechart.csv`
when its session ends: a preamble (`Profile Start Time:,Mar-28-2024_14-05-10`, counters, ...) and then a
`PROFILE RECORDS` table with a `Timestamp` column (`HH:MM:SS:ms`, local wall-clock time, no date).
The paper's Swing numbers come from such a file: per-core power summed over the cores the inference ran
on, times the runtime (eq. 8). Here the power is integrated over the window instead of averaged over a
whole job, and the cores are those the process may run on (`cpu_affinity()`), those given, or, with
`track_cores=True`, those its threads were seen running on during the window.

Because uProf writes the file only when its session ends, this meter works offline: run uProf around a
calibration, then compute windows from the file (`energy_between`, or `begin_window`/`end_window`, which
read the file when the window closes and fail if it does not cover the window yet).
"""

from __future__ import annotations

import csv
import io
import os
import re
import sys
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from hybridsim.core.errors import HybridsimError

from .common import EnergyMeter, Measurement, MeterUnavailable, PeriodicSampler

_START_RE = re.compile(
    r"Profile Start Time:\s*,?\s*(?P<mon>[A-Za-z]{3})-(?P<day>\d{1,2})-(?P<year>\d{4})_"
    r"(?P<h>\d{1,2})-(?P<m>\d{2})-(?P<s>\d{2})"
)
_TIME_RE = re.compile(r"^(?P<h>\d{1,2}):(?P<m>\d{2}):(?P<s>\d{2})(?:(?P<sep>[:.])(?P<frac>\d+))?$")
_CORE_RE = re.compile(r"^core(?P<core>\d+)[-_ ]?power$", re.IGNORECASE)


@dataclass(frozen=True)
class UProfTrace:
    """Per-core power over time from one timechart; record i is the mean power over
    the interval ending at it.
    """

    seconds: np.ndarray
    """Time of each record, in seconds after the first one (midnight rollovers resolved)."""
    core_power_w: dict[int, np.ndarray]
    interval_s: float
    """The sampling interval (median spacing); the first record covers this long before it."""
    start_epoch: float | None
    """POSIX time of the first record (its wall-clock time on the preamble's date), None without a date."""

    @property
    def cores(self) -> list[int]:
        return sorted(self.core_power_w)

    def span(self) -> tuple[float, float]:
        """The relative time the records cover: from one interval before the first to the last."""
        return float(self.seconds[0] - self.interval_s), float(self.seconds[-1])

    def core_energy_j(self, cores: Collection[int], start_s: float, end_s: float) -> dict[int, float]:
        """Energy per core over [start_s, end_s] (relative seconds): each record's power times its overlap."""
        first, last = self.span()
        if end_s < start_s or start_s < first - 1e-9 or end_s > last + 1e-9:
            raise HybridsimError(
                f"uprof: the window [{start_s:.3f}, {end_s:.3f}] s is not inside the timechart's "
                f"span [{first:.3f}, {last:.3f}] s"
            )
        missing = sorted(set(cores) - set(self.core_power_w))
        if missing:
            raise HybridsimError(
                f"uprof: cores {missing} have no power column; the timechart has cores {self.cores}"
            )
        lows = np.concatenate([[self.seconds[0] - self.interval_s], self.seconds[:-1]])
        overlap = np.clip(np.minimum(self.seconds, end_s) - np.maximum(lows, start_s), 0.0, None)
        return {core: float(np.dot(self.core_power_w[core], overlap)) for core in sorted(cores)}


def _time_of_day(text: str) -> float:
    match = _TIME_RE.match(text.strip())
    if not match:
        raise ValueError(f"not a uProf timestamp: {text!r}")
    fraction = 0.0
    if match["frac"]:
        fraction = int(match["frac"]) / 1e3 if match["sep"] == ":" else float(f"0.{match['frac']}")
    return int(match["h"]) * 3600 + int(match["m"]) * 60 + int(match["s"]) + fraction


def parse_timechart(text: str, *, source: str = "timechart") -> UProfTrace:
    """Parse a uProf timechart CSV's text into per-core power over time."""
    start_match = _START_RE.search(text)
    rows = list(csv.reader(io.StringIO(text)))
    header_at = next(
        (
            i
            for i, row in enumerate(rows)
            if any(cell.strip().lower() == "timestamp" for cell in row)
            and any(_CORE_RE.match(cell.strip()) for cell in row)
        ),
        None,
    )
    if header_at is None:
        raise HybridsimError(
            f"uprof: {source} has no records table with a Timestamp and core<N>-power columns "
            "(record it with `AMDuProfCLI timechart --event power`)"
        )
    header = [cell.strip() for cell in rows[header_at]]
    time_col = next(i for i, cell in enumerate(header) if cell.lower() == "timestamp")
    core_cols = {int(m["core"]): i for i, cell in enumerate(header) if (m := _CORE_RE.match(cell))}
    times: list[float] = []
    power: dict[int, list[float]] = {core: [] for core in core_cols}
    for offset, row in enumerate(rows[header_at + 1 :], start=header_at + 2):
        if not any(cell.strip() for cell in row):
            continue
        try:
            times.append(_time_of_day(row[time_col]))
            for core, col in core_cols.items():
                power[core].append(float(row[col]))
        except (ValueError, IndexError) as error:
            raise HybridsimError(f"uprof: {source} line {offset}: {error}") from None
    if len(times) < 2:
        raise HybridsimError(f"uprof: {source} has {len(times)} record(s); at least 2 are needed")
    day = np.concatenate([[0], np.cumsum(np.diff(times) < -1.0)])  # clock went back: midnight passed
    absolute = np.asarray(times) + 86400.0 * day
    if np.any(np.diff(absolute) <= 0):
        raise HybridsimError(f"uprof: {source} has timestamps that do not increase")
    start_epoch = None
    if start_match:
        started = datetime.strptime(
            f"{start_match['mon']}-{start_match['day']}-{start_match['year']}", "%b-%d-%Y"
        )
        first = times[0]
        start_tod = int(start_match["h"]) * 3600 + int(start_match["m"]) * 60 + int(start_match["s"])
        start_epoch = started.timestamp() + first + (86400.0 if first < start_tod - 1.0 else 0.0)
    return UProfTrace(
        seconds=absolute - absolute[0],
        interval_s=float(np.median(np.diff(absolute))),
        core_power_w={core: np.asarray(values) for core, values in sorted(power.items())},
        start_epoch=start_epoch,
    )


def load_timechart(path: Path | str) -> UProfTrace:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        raise MeterUnavailable(
            f"uprof: cannot read the timechart {path}: {error.strerror or error}"
        ) from None
    return parse_timechart(text, source=str(path))


class _CoreTracker:
    """Samples which cores a process's threads ran on (Linux /proc), counting only threads that used CPU."""

    def __init__(self, pid: int, interval_s: float) -> None:
        self._task_dir = Path(f"/proc/{pid}/task")
        self._cpu_ticks: dict[str, int] = {}
        self.cores: set[int] = set()
        self._sample()
        self._sampler = PeriodicSampler(self._sample, interval_s, name="uprof-core-tracker")

    def start(self) -> None:
        self._sampler.start()

    def _sample(self) -> None:
        for stat in self._task_dir.glob("*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue  # the thread ended
            ticks = int(fields[11]) + int(fields[12])  # utime + stime
            if ticks > self._cpu_ticks.get(stat.parent.name, ticks) or fields[0] == "R":
                self.cores.add(int(fields[36]))  # 'processor': the CPU it last ran on
            self._cpu_ticks[stat.parent.name] = ticks

    def stop(self) -> set[int]:
        self._sampler.stop()
        self._sample()
        return set(self.cores)


def default_cores(pid: int | None = None) -> list[int]:
    """The cores a process may run on (its CPU affinity)."""
    import psutil

    try:
        return sorted(psutil.Process(pid).cpu_affinity())
    except AttributeError:
        raise HybridsimError("uprof: this platform cannot report CPU affinity; pass cores=[...]") from None


class UProfMeter(EnergyMeter):
    """Per-core CPU energy from an AMD uProf timechart, summed over the cores our process ran on (eq. 8).

    Limits: offline only (uProf writes the file when its session ends); resolution is the uProf interval
    (100 ms or more), with record timestamps to 1 ms on a wall clock that must be this machine's; core power
    is the firmware's estimate per core and leaves out the uncore/IO die, memory, and the other processes'
    share of a core the process shared; with affinity as the core set (the default) every allowed core's
    power counts, busy or not; `track_cores=True` samples the cores the threads ran on (Linux, 10 Hz),
    and misses brief migrations and child processes.
    """

    name = "uprof"
    scope = (
        "per-core power (AMD uProf timechart) of the cores this process ran on, integrated over the window; "
        "excludes uncore/IO die, DRAM, GPUs and PSU losses"
    )

    def __init__(
        self,
        timechart_csv: Path | str,
        *,
        cores: Sequence[int] | None = None,
        pid: int | None = None,
        track_cores: bool = False,
        track_interval_s: float = 0.1,
    ) -> None:
        self.path = Path(timechart_csv)
        if not self.path.is_file():
            raise MeterUnavailable(
                f"uprof: no timechart at {self.path} (record one with "
                "`AMDuProfCLI timechart --event power --interval 100 -o DIR`)"
            )
        self._loaded = self._file_state()  # before reading: a write during the read is seen next time
        self.trace = load_timechart(self.path)
        self.cores = sorted(cores) if cores is not None else default_cores(pid)
        self.pid, self.track_cores, self.track_interval_s = pid, track_cores, track_interval_s
        if track_cores and not sys.platform.startswith("linux"):
            raise HybridsimError("uprof: track_cores needs Linux /proc; pass cores=[...] instead")
        self._window: tuple[float, _CoreTracker | None] | None = None

    def energy_between(
        self, start: float, end: float, *, cores: Collection[int] | None = None, relative: bool = False
    ) -> Measurement:
        """Energy of `cores` between two POSIX times (`time.time()`), or relative seconds into the file."""
        trace, used = self.trace, sorted(self.cores if cores is None else cores)
        if not relative:
            if trace.start_epoch is None:
                raise HybridsimError(
                    f"uprof: {self.path} has no 'Profile Start Time' date; use relative=True"
                )
            start, end = start - trace.start_epoch, end - trace.start_epoch
        per_core = trace.core_energy_j(used, start, end)
        first, last = trace.span()
        records = int(np.count_nonzero((trace.seconds > start) & (trace.seconds - trace.interval_s < end)))
        return Measurement(
            elapsed_s=end - start,
            energy_j={f"cpu:core-{core}": joules for core, joules in per_core.items()},
            method=f"uprof-timechart per-core power x {len(used)} core(s) (eq. 8)",
            samples=records,
            notes=(f"cores {used}", f"timechart {self.path.name} spans {last - first:.1f} s"),
        )

    def begin_window(self) -> None:
        if self._window is not None:
            raise HybridsimError("uprof: begin_window called while a window is open")
        tracker = None
        if self.track_cores:
            tracker = _CoreTracker(self.pid or os.getpid(), self.track_interval_s)
            tracker.start()
        self._window = (time.time(), tracker)

    def end_window(self) -> Measurement:
        if self._window is None:
            raise HybridsimError("uprof: end_window called without begin_window")
        (started, tracker), ended = self._window, time.time()
        self._window = None
        cores = tracker.stop() if tracker is not None else None
        state = self._file_state()
        if state is None or state != self._loaded:  # uProf may have finished writing since the meter was made
            self.trace = load_timechart(self.path)
            self._loaded = state
        return self.energy_between(started, ended, cores=cores)

    def _file_state(self) -> tuple[int, int] | None:
        """(modification time, size) of the timechart, to re-read it only when it
        changed (it can be large).
        """
        try:
            status = self.path.stat()
        except OSError:
            return None  # gone: re-read, so that load_timechart says so
        return status.st_mtime_ns, status.st_size

    def describe(self) -> dict[str, object]:
        return {
            "meter": self.name,
            "timechart": str(self.path),
            "cores": self.cores,
            "track_cores": self.track_cores,
            "interval_s": self.trace.interval_s,
        }

    def close(self) -> None:
        if self._window is not None and self._window[1] is not None:
            self._window[1].stop()
        self._window = None
