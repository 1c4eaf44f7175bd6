"""Apple Silicon Macs: `powermetrics` power samples, with the CPU share of our process (paper eqs. 5-6).

macOS has no energy counter a user process can read; `sudo powermetrics` prints, every interval, the
SoC's estimated CPU and GPU power (mW) and, with `--show-process-energy`, an "Energy Impact" score per
task plus an `ALL_TASKS` total. As in the paper, for each sample of length ms:

    CPU J += cpu_mW x ms x (impact of our process / impact of ALL_TASKS) / 1e6      (eq. 5)
    GPU J += gpu_mW x ms / 1e6                                                        (eq. 6)

so the CPU side is the process's share and the GPU side is the whole GPU. Unlike the paper's harness,
powermetrics is started once and kept running (the paper started it per trial, slept 2 s inside the timed
region, and lost the first ~1.6 s of samples); a sample that straddles a window's edge counts in
proportion to its overlap. The text parser is a pure function (`parse_powermetrics`), tested on
recorded output.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from hybridsim.core.errors import HybridsimError

from .common import EnergyMeter, Measurement, MeterUnavailable

_HEADER_RE = re.compile(
    r"^\*\*\* Sampled system activity \((?P<date>.*)\) \((?P<ms>[\d.]+)\s*ms elapsed\) \*\*\*"
)
_POWER_RE = re.compile(r"^(?P<unit>CPU|GPU|ANE) Power:\s*(?P<value>[\d.]+)\s*(?P<scale>mW|W)\b")
_TASK_RE = re.compile(r"^(?P<name>\S.*?)\s+(?P<pid>-?\d+)\s+(?P<values>-?[\d.]+(?:\s+-?[\d.]+)*)\s*$")


@dataclass(frozen=True)
class PowermetricsSample:
    """One powermetrics sample: the SoC's power over `elapsed_ms` and every task's energy impact."""

    elapsed_ms: float
    cpu_mw: float | None
    gpu_mw: float | None
    ane_mw: float | None
    all_tasks_impact: float | None
    """The `ALL_TASKS` row's Energy Impact: the denominator of the process share."""
    task_impact: Mapping[int, float] = field(default_factory=dict)
    task_name: Mapping[int, str] = field(default_factory=dict)
    received_at: float | None = None
    """perf_counter() when the sample's header line was read (its end), for the live meter."""

    def process_impact(
        self, pids: Collection[int] | None = None, names: Collection[str] | None = None
    ) -> float:
        """Energy Impact of the tasks that are ours: by pid, or by name as the paper did ('python3.12')."""
        return float(
            sum(
                impact
                for pid, impact in self.task_impact.items()
                if (pids is not None and pid in pids) or (names is not None and self.task_name[pid] in names)
            )
        )

    def energy_j(
        self, pids: Collection[int] | None = None, names: Collection[str] | None = None
    ) -> tuple[float, float]:
        """(CPU J of our process's share, GPU J) over this sample: eqs. 5 and 6."""
        if self.cpu_mw is None or self.gpu_mw is None:
            raise HybridsimError(
                "powermetrics: a sample has no 'CPU Power'/'GPU Power' line: run with "
                "--samplers cpu_power,gpu_power on Apple Silicon"
            )
        if self.all_tasks_impact is None:
            raise HybridsimError(
                "powermetrics: a sample has no ALL_TASKS 'Energy Impact': run with "
                "--samplers tasks --show-process-energy"
            )
        share = self.process_impact(pids, names) / self.all_tasks_impact if self.all_tasks_impact > 0 else 0.0
        return self.cpu_mw * self.elapsed_ms * share / 1e6, self.gpu_mw * self.elapsed_ms / 1e6


@dataclass
class _Partial:
    """The sample being read."""

    elapsed_ms: float
    received_at: float | None
    power_mw: dict[str, float] = field(default_factory=dict)
    all_tasks_impact: float | None = None
    task_impact: dict[int, float] = field(default_factory=dict)
    task_name: dict[int, str] = field(default_factory=dict)


class PowermetricsParser:
    """Turns powermetrics text into samples, line by line (the live meter feeds it from a pipe).

    Tolerant of what differs between macOS versions: a 'GPU Power' line in both the processor and the GPU
    section (read once), 'Combined Power (CPU + GPU + ANE)' and 'GPU HW active residency' lines (ignored),
    values in W instead of mW, and task names with spaces. Energy Impact is read as the last column of
    the tasks table, where `--show-process-energy` puts it, or under its header when it is not last.
    """

    def __init__(self) -> None:
        self._current: _Partial | None = None
        self._impact_column: int | None = None
        self._impact_last = True
        self._in_tasks = False

    def feed(self, line: str, received_at: float | None = None) -> PowermetricsSample | None:
        """Read one line; returns the previous sample when this line starts a new one."""
        line = line.rstrip("\n")
        header = _HEADER_RE.match(line)
        if header:
            finished = self.finish()
            self._current = _Partial(elapsed_ms=float(header["ms"]), received_at=received_at)
            return finished
        if self._current is None:
            return None
        stripped = line.strip()
        if stripped.startswith("Name") and "ID" in stripped:
            self._in_tasks = "Energy Impact" in line
            self._impact_last = line.rstrip().endswith("Energy Impact")
            self._impact_column = line.find("Energy Impact") if self._in_tasks else None
            return None
        if not stripped or stripped.startswith("*"):
            self._in_tasks = False
            return None
        power = _POWER_RE.match(stripped)
        if power:
            # the GPU section repeats 'GPU Power' on some macOS versions: read it once
            self._current.power_mw.setdefault(
                power["unit"], float(power["value"]) * (1e3 if power["scale"] == "W" else 1.0)
            )
            return None
        if self._in_tasks:
            self._read_task(line)
        return None

    def _read_task(self, line: str) -> None:
        assert self._current is not None
        task = _TASK_RE.match(line.strip())
        if not task:
            return
        if self._impact_last:
            impact = float(task["values"].split()[-1])
        else:
            assert self._impact_column is not None
            cell = line[self._impact_column :].split()[:1]
            if not cell or not re.fullmatch(r"-?[\d.]+", cell[0]):
                return
            impact = float(cell[0])
        name, pid = task["name"].strip(), int(task["pid"])
        if name == "ALL_TASKS":
            self._current.all_tasks_impact = impact
        else:
            self._current.task_impact[pid] = impact
            self._current.task_name[pid] = name

    def finish(self) -> PowermetricsSample | None:
        """The sample being read, complete or not (call at the end of the text)."""
        current, self._current = self._current, None
        self._in_tasks = False
        if current is None:
            return None
        return PowermetricsSample(
            elapsed_ms=current.elapsed_ms,
            cpu_mw=current.power_mw.get("CPU"),
            gpu_mw=current.power_mw.get("GPU"),
            ane_mw=current.power_mw.get("ANE"),
            all_tasks_impact=current.all_tasks_impact,
            task_impact=current.task_impact,
            task_name=current.task_name,
            received_at=current.received_at,
        )


def parse_powermetrics(text: str | Iterable[str]) -> list[PowermetricsSample]:
    """Every sample in a powermetrics text output."""
    parser = PowermetricsParser()
    lines = text.splitlines() if isinstance(text, str) else text
    samples = [sample for line in lines if (sample := parser.feed(line)) is not None]
    last = parser.finish()
    return samples + ([last] if last is not None else [])


def energy_from_samples(
    samples: Iterable[PowermetricsSample],
    *,
    pids: Collection[int] | None = None,
    names: Collection[str] | None = None,
) -> dict[str, float]:
    """Sum of eqs. 5-6 over whole samples: {'cpu:process-share': J, 'gpu:0': J}."""
    cpu = gpu = 0.0
    for sample in samples:
        sample_cpu, sample_gpu = sample.energy_j(pids, names)
        cpu, gpu = cpu + sample_cpu, gpu + sample_gpu
    return {"cpu:process-share": cpu, "gpu:0": gpu}


def overlap_fraction(sample: PowermetricsSample, start: float, end: float) -> float:
    """How much of a live sample (ending at `received_at`, lasting `elapsed_ms`) lies inside [start, end]."""
    assert sample.received_at is not None
    sample_start = sample.received_at - sample.elapsed_ms / 1e3
    overlap = min(end, sample.received_at) - max(start, sample_start)
    return max(0.0, overlap) / (sample.elapsed_ms / 1e3) if sample.elapsed_ms > 0 else 0.0


class PowermetricsMeter(EnergyMeter):
    """CPU share of this process and whole-GPU energy on Apple Silicon, from `sudo powermetrics`.

    Limits: powermetrics' power figures are the SoC's own estimates (Apple: "may be inaccurate", not for
    comparing devices); the resolution is one sample (`interval_ms`, 200 by default), so `end_window`
    waits up to about two intervals for the sample that covers the window's end, and windows much shorter
    than an interval are pro-rated guesses; Energy Impact is Apple's unitless score, not a power split, so
    the CPU share (of this process and its child processes) is an attribution, not a measurement; the
    first window also waits, before it opens, for powermetrics to start and deliver a sample (about two
    intervals), so that no window begins unmeasured; the GPU side is the whole GPU, every process's;
    ANE, DRAM, display, SSD and the rest of the SoC are left out. Needs macOS on Apple Silicon and root
    (run as root or allow `sudo -n powermetrics`).
    """

    name = "powermetrics"
    scope = (
        "Apple Silicon: CPU power x this process's Energy Impact share (eq. 5) plus whole-GPU power (eq. 6), "
        "integrated over powermetrics samples; excludes ANE, DRAM, display, storage and the rest of the SoC"
    )

    def __init__(
        self, interval_ms: int = 200, *, pids: Collection[int] | None = None, executable: str = "powermetrics"
    ) -> None:
        if platform.system() != "Darwin":
            raise MeterUnavailable(f"powermetrics: needs macOS, this is {platform.system()}")
        if platform.machine() != "arm64":
            raise MeterUnavailable(
                f"powermetrics: needs Apple Silicon (arm64), this Mac is {platform.machine()}"
            )
        path = shutil.which(executable)
        if path is None:
            raise MeterUnavailable(f"powermetrics: `{executable}` is not on PATH")
        if interval_ms < 10:
            raise HybridsimError(f"powermetrics: interval_ms must be >= 10, got {interval_ms}")
        self._prefix: list[str] = []
        if os.geteuid() != 0:
            try:  # `sudo -n -l CMD` succeeds only if CMD may run without a password prompt
                allowed = (
                    subprocess.run(["sudo", "-n", "-l", path], capture_output=True, check=False).returncode
                    == 0
                )
            except OSError:
                allowed = False
            if not allowed:
                raise MeterUnavailable(
                    "powermetrics: needs root; run calibration with sudo, or allow passwordless "
                    f"`sudo {path}` in sudoers"
                )
            self._prefix = ["sudo", "-n"]
        self.command = [
            *self._prefix,
            path,
            "--samplers",
            "cpu_power,gpu_power,tasks",
            "--show-process-energy",
            "-i",
            str(interval_ms),
            "-b",
            "1",
        ]
        self.interval_ms = interval_ms
        self.pids = pids
        self._process: subprocess.Popen[str] | None = None
        self._samples: list[PowermetricsSample] = []
        self._arrived = threading.Condition()
        self._window_start: float | None = None

    def _ensure_running(self) -> None:
        if self._process is not None and self._process.poll() is None:
            return
        with self._arrived:
            self._samples = []
        self._process = subprocess.Popen(
            self.command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1
        )
        threading.Thread(
            target=self._read, args=(self._process,), name="powermetrics-reader", daemon=True
        ).start()
        # A window must not open before samples flow, or its start would go unmeasured (the paper's 1.6 s).
        deadline = time.perf_counter() + 5.0 + 3 * self.interval_ms / 1e3
        with self._arrived:
            while not self._samples:
                remaining = deadline - time.perf_counter()
                if remaining <= 0 or self._process.poll() is not None:
                    reason = self._stderr_tail()
                    self.close()
                    raise MeterUnavailable(f"powermetrics: no sample arrived after starting it{reason}")
                self._arrived.wait(timeout=remaining)

    def _read(self, process: subprocess.Popen[str]) -> None:
        parser = PowermetricsParser()
        assert process.stdout is not None
        for line in process.stdout:
            sample = parser.feed(line, time.perf_counter())
            if sample is not None:
                with self._arrived:
                    self._samples.append(sample)
                    self._arrived.notify_all()
        with self._arrived:
            self._arrived.notify_all()

    def _our_pids(self) -> set[int]:
        if self.pids is not None:
            return set(self.pids)
        pids = {os.getpid()}
        try:
            import psutil

            pids |= {child.pid for child in psutil.Process().children(recursive=True)}
        except ImportError:
            pass
        return pids

    def begin_window(self) -> None:
        if self._window_start is not None:
            raise HybridsimError("powermetrics: begin_window called while a window is open")
        self._ensure_running()
        self._window_start = time.perf_counter()
        with self._arrived:  # samples that ended before this window are no longer needed
            self._samples = [
                s for s in self._samples if s.received_at is not None and s.received_at > self._window_start
            ]

    def end_window(self) -> Measurement:
        if self._window_start is None:
            raise HybridsimError("powermetrics: end_window called without begin_window")
        start, end, self._window_start = self._window_start, time.perf_counter(), None
        deadline = end + 2 * self.interval_ms / 1e3 + 2.0
        with self._arrived:
            while not any(s.received_at is not None and s.received_at >= end for s in self._samples):
                remaining = deadline - time.perf_counter()
                if remaining <= 0 or self._process is None or self._process.poll() is not None:
                    raise MeterUnavailable(
                        f"powermetrics: no sample covering the window's end arrived{self._stderr_tail()}"
                    )
                self._arrived.wait(timeout=remaining)
            samples = list(self._samples)
        pids, cpu, gpu, used = self._our_pids(), 0.0, 0.0, 0
        for sample in samples:
            fraction = overlap_fraction(sample, start, end)
            if fraction > 0:
                sample_cpu, sample_gpu = sample.energy_j(pids)
                cpu, gpu, used = cpu + fraction * sample_cpu, gpu + fraction * sample_gpu, used + 1
        return Measurement(
            elapsed_s=end - start,
            energy_j={"cpu:process-share": cpu, "gpu:0": gpu},
            method=f"powermetrics ({self.interval_ms} ms samples; CPU x energy-impact share, eqs. 5-6)",
            samples=used,
        )

    def _stderr_tail(self) -> str:
        if self._process is None or self._process.poll() is None or self._process.stderr is None:
            return ""
        tail = self._process.stderr.read().strip().splitlines()[-1:]
        return f" (powermetrics exited: {tail[0]})" if tail else " (powermetrics exited)"

    def describe(self) -> dict[str, object]:
        """Command and host, for a profile's metadata."""
        return {"meter": self.name, "command": " ".join(self.command), "macos": platform.mac_ver()[0]}

    def close(self) -> None:
        self._window_start = None
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
        self._process = None
