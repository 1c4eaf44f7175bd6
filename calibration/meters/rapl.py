"""Intel and AMD CPUs on Linux: RAPL energy counters read through `/sys/class/powercap`.

Every CPU socket keeps a running energy counter for its package (cores, caches, memory controller, and on
client parts the integrated GPU) and, on most Intel servers, one for the DRAM attached to it. The kernel
shows each counter as a zone directory: `intel-rapl:<socket>` for the package and `intel-rapl:<socket>:<n>`
for its sub-zones, one of which is named `dram`. AMD Zen CPUs use the same driver and the same tree
(package zones only; Zen has no DRAM domain). A window's energy is the difference of two readings.

Three things make the naive difference wrong, and this module handles each:

* **Wraparound.** `energy_uj` counts up to `max_energy_range_uj` and starts again from zero (about 262 kJ
  on many Intel parts: 20 minutes at 200 W; DRAM and AMD ranges can be far smaller). A difference that went
  negative wrapped once and is corrected with the range. Two wraps between two readings cannot be told
  apart from none, so while a window is open a light background sampler reads every counter every
  `sample_interval_s` seconds (default 5 s, inside the wrap period of the counters named above even at
  a few hundred watts; lower it for one that wraps faster) and accumulates the deltas; long windows are
  then correct. With `sample_interval_s=None` only one wrap per window is handled.
* **Idle power.** RAPL counts everything the package does, including what the idle machine would burn
  anyway. As in the paper's eq. 7, `net = gross - idle_W x elapsed` per domain, with `idle_W` measured by
  `measure_idle(seconds)` (or given). Both gross and net are recorded; net can be negative when the
  window's load is within the noise of the baseline, and is reported as measured.
* **Permissions.** Since November 2020 (Linux 5.10 and the stable kernels the fix went to; CVE-2020-8694,
  "PLATYPUS") `energy_uj` is readable by root only.
  An unreadable or missing file raises `MeterUnavailable` naming the file and the fix.

Domains: `cpu:package-<socket>` and `dram:<socket>`. The `core`/`uncore` sub-zones (already inside the
package), `psys` (the whole platform, overlapping the package) and `intel-rapl-mmio` (the same package
counter through another interface) are left out so that nothing is counted twice.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from hybridsim.core.errors import HybridsimError

from .common import EnergyMeter, Measurement, MeterUnavailable, PeriodicSampler

DEFAULT_POWERCAP_ROOT = Path("/sys/class/powercap")
_ZONE_RE = re.compile(r"^intel-rapl:(\d+)(?::(\d+))?$")


@dataclass(frozen=True)
class RaplDomain:
    """One counter we read."""

    name: str
    """Our domain name: 'cpu:package-0' or 'dram:0'."""
    energy_file: Path
    max_energy_uj: int
    """The counter wraps to zero after this value."""


def _read_int(path: Path) -> int:
    """An integer counter file, or `MeterUnavailable` saying why it cannot be read."""
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError) as error:
        raise _unreadable(path, error) from None


def _unreadable(path: Path, error: OSError | ValueError) -> MeterUnavailable:
    if isinstance(error, PermissionError):
        return MeterUnavailable(
            f"rapl: cannot read {path}: permission denied (RAPL energy files are root-only since the "
            f"2020 PLATYPUS fix); run as root, or `sudo chmod a+r {path}` and the other zones' "
            "energy_uj (lasts until reboot)"
        )
    if isinstance(error, FileNotFoundError):
        return MeterUnavailable(f"rapl: {path} does not exist: this powercap zone has no energy counter")
    return MeterUnavailable(f"rapl: cannot read {path}: {error}")


def discover_domains(root: Path, *, include_dram: bool = True) -> list[RaplDomain]:
    """Package (and DRAM) zones under a powercap root, readable now, or `MeterUnavailable` saying why not.

    Accepts both layouts the kernel produces: the flat one of `/sys/class/powercap` (every zone a sibling)
    and the nested one of `/sys/devices/virtual/powercap/intel-rapl` (sub-zones inside their package).
    """
    if not root.is_dir():
        raise MeterUnavailable(
            f"rapl: {root} does not exist: this kernel exposes no powercap interface (on a Linux host "
            "with an Intel or AMD CPU try `sudo modprobe intel_rapl_msr`; virtual machines and "
            "containers rarely expose RAPL)"
        )
    zones: dict[tuple[int, int | None], Path] = {}
    for path in sorted([*root.glob("intel-rapl:*"), *root.glob("intel-rapl:*/intel-rapl:*")]):
        match = _ZONE_RE.match(path.name)
        if match and path.is_dir():
            key = (int(match.group(1)), None if match.group(2) is None else int(match.group(2)))
            zones.setdefault(key, path)
    if not zones:
        raise MeterUnavailable(
            f"rapl: {root} has no intel-rapl:* zones: this CPU or kernel does not expose RAPL"
        )

    def zone_name(path: Path) -> str:
        try:
            return path.joinpath("name").read_text().strip()
        except OSError as error:
            raise _unreadable(path / "name", error) from None

    package_socket: dict[int, int] = {}
    wanted: list[tuple[str, Path]] = []
    for (top, sub), path in sorted(
        zones.items(), key=lambda item: (item[0][0], -1 if item[0][1] is None else item[0][1])
    ):
        label = zone_name(path)
        if sub is None and label.startswith("package-"):
            package_socket[top] = int(label.split("-", 1)[1])
            wanted.append((f"cpu:{label}", path))
        elif label == "dram" and include_dram:
            wanted.append((f"dram:{package_socket.get(top, top)}", path))
    if not wanted:
        raise MeterUnavailable(f"rapl: {root} has RAPL zones but no package-* zone among them")

    domains = []
    for name, path in wanted:
        _read_int(path / "energy_uj")  # readable now, or say why not before any window opens
        domains.append(
            RaplDomain(
                name=name,
                energy_file=path / "energy_uj",
                max_energy_uj=_read_int(path / "max_energy_range_uj"),
            )
        )
    return domains


def wrapped_delta_uj(before: int, after: int, max_energy_uj: int) -> int:
    """Energy counted between two readings, assuming at most one wrap of the counter in between."""
    return after - before if after >= before else after + max_energy_uj - before


class _Accumulator:
    """Running totals per domain, advanced by `poll()`; safe to poll from the sampler and the caller."""

    def __init__(self, domains: list[RaplDomain]) -> None:
        self._domains = domains
        self._lock = threading.Lock()
        self._last = self._read()
        self.total_uj = dict.fromkeys(self._last, 0)
        self.polls = 0
        self.wraps = 0

    def _read(self) -> dict[str, int]:
        return {domain.name: _read_int(domain.energy_file) for domain in self._domains}

    def poll(self) -> dict[str, int]:
        with self._lock:
            now = self._read()
            for domain in self._domains:
                before, after = self._last[domain.name], now[domain.name]
                self.wraps += after < before
                self.total_uj[domain.name] += wrapped_delta_uj(before, after, domain.max_energy_uj)
            self._last = now
            self.polls += 1
            return dict(self.total_uj)


class RaplMeter(EnergyMeter):
    """CPU package and DRAM energy from RAPL on Linux (Intel; AMD Zen: package only), every socket.

    Limits: system-wide, not per process (every process and the OS idle load are in it unless an idle
    baseline is subtracted); counters update about every 1 ms with ~15-61 uJ units, so windows under
    ~10 ms are noise; package energy is the CPU's own model of its power
    (calibrated, not a shunt measurement, and on AMD the core/package split is modelled by the SMU); it
    leaves out GPUs, disks, NICs, fans, voltage-regulator and PSU losses, and DRAM wherever no `dram` zone
    exists (AMD, most desktops and laptops).
    """

    name = "rapl"
    scope = (
        "CPU package energy of every socket (cores, caches, memory controller, integrated graphics) plus "
        "attached DRAM where a RAPL dram domain exists, system-wide, minus the measured idle baseline where "
        "one was measured; excludes GPUs, other devices, regulator and PSU losses"
    )

    def __init__(
        self,
        root: Path | str = DEFAULT_POWERCAP_ROOT,
        *,
        sample_interval_s: float | None = 5.0,
        idle_w: Mapping[str, float] | None = None,
        include_dram: bool = True,
    ) -> None:
        if sample_interval_s is not None and sample_interval_s <= 0:
            raise HybridsimError(f"rapl: sample_interval_s must be > 0 or None, got {sample_interval_s}")
        self.root = Path(root)
        self.domains = discover_domains(self.root, include_dram=include_dram)
        self.sample_interval_s = sample_interval_s
        self.idle_w: dict[str, float] = {}
        self._idle_source = ""
        if idle_w is not None:
            self.set_idle(idle_w, source="given")
        self._window: tuple[_Accumulator, PeriodicSampler | None, float] | None = None

    @property
    def domain_names(self) -> list[str]:
        return [domain.name for domain in self.domains]

    def set_idle(self, idle_w: Mapping[str, float], *, source: str = "given") -> None:
        """Use these idle powers (W per domain) as the baseline subtracted from every later window."""
        unknown = sorted(set(idle_w) - set(self.domain_names))
        if unknown:
            raise HybridsimError(
                f"rapl: idle_w names unknown domains {unknown}; this machine has {self.domain_names}"
            )
        self.idle_w = {name: float(watts) for name, watts in idle_w.items()}
        self._idle_source = source

    def measure_idle(self, seconds: float = 10.0) -> dict[str, float]:
        """Measure the idle machine for `seconds` and keep the mean power per domain as the baseline (eq. 7).

        Run it with nothing else busy on the host; the result is returned and used for every later window.
        """
        if seconds <= 0:
            raise HybridsimError(f"rapl: idle measurement needs seconds > 0, got {seconds}")
        self.begin_window()
        time.sleep(seconds)
        gross = self._close_window()
        idle = {name: joules / gross.elapsed_s for name, joules in gross.energy_j.items()}
        self.set_idle(idle, source=f"measured over {gross.elapsed_s:.1f} s")
        return dict(idle)

    def begin_window(self) -> None:
        if self._window is not None:
            raise HybridsimError("rapl: begin_window called while a window is open")
        accumulator = _Accumulator(self.domains)
        sampler = None
        if self.sample_interval_s is not None:
            # polls often enough that no counter wraps twice unseen
            sampler = PeriodicSampler(accumulator.poll, self.sample_interval_s, name="rapl-sampler")
            sampler.start()
        self._window = (accumulator, sampler, time.perf_counter())

    def _close_window(self) -> Measurement:
        """The gross energy of the open window (no idle subtracted)."""
        if self._window is None:
            raise HybridsimError("rapl: end_window called without begin_window")
        accumulator, sampler, started = self._window
        self._window = None
        if sampler is not None:
            sampler.stop()
        totals = accumulator.poll()
        elapsed = time.perf_counter() - started
        return Measurement(
            elapsed_s=elapsed,
            energy_j={name: uj / 1e6 for name, uj in totals.items()},
            method="rapl-sysfs",
            samples=accumulator.polls + 1,
            notes=(f"{accumulator.wraps} counter wrap(s) corrected",) if accumulator.wraps else (),
        )

    def end_window(self) -> Measurement:
        gross = self._close_window()
        if not self.idle_w:
            return Measurement(
                elapsed_s=gross.elapsed_s,
                energy_j=gross.energy_j,
                method="rapl-sysfs (gross, no idle subtracted)",
                gross_energy_j=dict(gross.energy_j),
                samples=gross.samples,
                notes=gross.notes,
            )
        net = {
            name: joules - self.idle_w.get(name, 0.0) * gross.elapsed_s
            for name, joules in gross.energy_j.items()
        }
        notes = list(gross.notes)
        negative = sorted(name for name, joules in net.items() if joules < 0)
        if negative:
            notes.append(f"net energy below zero in {negative}: the load is within the idle baseline's noise")
        idle_total = sum(self.idle_w.values())
        uncovered = sorted(set(gross.energy_j) - set(self.idle_w))
        if uncovered:
            notes.append(f"no idle baseline for {uncovered}: their energy is gross")
        covered = ", ".join(sorted(self.idle_w))
        return Measurement(
            elapsed_s=gross.elapsed_s,
            energy_j=net,
            method=f"rapl-sysfs (idle {idle_total:.2f} W subtracted from {covered}, {self._idle_source})",
            gross_energy_j=dict(gross.energy_j),
            samples=gross.samples,
            notes=tuple(notes),
        )

    def describe(self) -> dict[str, object]:
        """What this meter reads, for a profile's metadata."""
        return {
            "meter": self.name,
            "root": str(self.root),
            "domains": self.domain_names,
            "max_energy_range_uj": {domain.name: domain.max_energy_uj for domain in self.domains},
            "idle_w": dict(self.idle_w),
            "idle_source": self._idle_source or None,
            "sample_interval_s": self.sample_interval_s,
        }

    def close(self) -> None:
        if self._window is not None:
            _, sampler, _ = self._window
            self._window = None
            if sampler is not None:
                sampler.stop()
