"""Stand-ins for the accelerator and the energy counter, so the protocol can be tested in milliseconds.

`FakeRunner` follows a known cost law (runtime grows with m and n, power is constant), can run out of
memory at chosen settings, stop the run like Ctrl-C after k trials, and advance a fake clock by each
trial's runtime. `FakeMeter` is a real `EnergyMeter` that checks windows never overlap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hybridsim.calibration.meters.common import EnergyMeter, Measurement
from hybridsim.calibration.runner import BudgetExhausted, OutOfMemory, TrialResult


def fake_runtime_s(m: int, n: int) -> float:
    """The cost law of the fake machine: a fixed overhead, prefill per input
    token, decode per output token.
    """
    return 0.05 + 1e-3 * m + 1e-2 * n


class FakeMeter(EnergyMeter):
    """Reports `watts` x the elapsed time the runner tells it, split between CPU and GPU."""

    name = "fake"
    scope = "fake: 30 W GPU + 10 W CPU, for tests"

    def __init__(self) -> None:
        self.open = False
        self.windows = 0
        self.pending_s = 0.0

    def begin_window(self) -> None:
        assert not self.open, "windows must not overlap"
        self.open = True

    def end_window(self) -> Measurement:
        assert self.open, "end_window without begin_window"
        self.open = False
        self.windows += 1
        elapsed = self.pending_s
        return Measurement(
            elapsed_s=elapsed,
            energy_j={"gpu:0": 30.0 * elapsed, "cpu:package-0": 10.0 * elapsed},
            method="fake-constant-power",
            samples=1,
        )


@dataclass
class FakeClock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeRunner:
    """Returns `fake_runtime_s` (with 1% seeded noise) and the meter's energy for it."""

    oom_at: set[tuple[int, int]] = field(default_factory=set)
    interrupt_after: int | None = None
    clock: FakeClock | None = None
    short_by: int = 0
    deadline: float | None = None
    """On `clock`: a trial that would end after it is abandoned with `BudgetExhausted`, as the real one is."""
    seed: int = 0
    calls: list[tuple[int, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)

    def run_trial(self, input_tokens: int, output_tokens: int, meter: EnergyMeter) -> TrialResult:
        if self.interrupt_after is not None and len(self.calls) >= self.interrupt_after:
            raise KeyboardInterrupt
        self.calls.append((input_tokens, output_tokens))
        if (input_tokens, output_tokens) in self.oom_at:
            raise OutOfMemory("CUDA out of memory. Tried to allocate 20.00 GiB")
        runtime = fake_runtime_s(input_tokens, output_tokens) * (1 + 0.01 * self.rng.standard_normal())
        if self.deadline is not None and self.clock is not None and self.clock.now + runtime > self.deadline:
            self.clock.now = self.deadline
            raise BudgetExhausted("the time budget ran out during a trial")
        meter.begin_window()
        if isinstance(meter, FakeMeter):
            meter.pending_s = runtime
        measurement = meter.end_window()
        if self.clock is not None:
            self.clock.now += runtime
        return TrialResult(
            runtime_s=runtime,
            measurement=measurement,
            input_tokens=input_tokens,
            output_tokens=output_tokens - self.short_by,
            batch_size=1,
            peak_memory_mb=123.0,
        )

    def describe(self) -> dict[str, Any]:
        return {"model": "fake", "parameters": 0, "load_time_s": 0.0}


def fake_context(**changes: Any) -> Any:
    """A `CalibrationContext` as the CLI would build it, for a fake run."""
    from hybridsim.calibration.profile_writer import CalibrationContext

    values: dict[str, Any] = dict(
        system="test-box",
        device_name="Fake GPU",
        model="fake",
        dtype="bfloat16",
        meter="fake",
        energy_scope=FakeMeter.scope,
        estimated=False,
        kv_cache=True,
        batch_size=1,
        command="hybridsim calibrate --test",
        run={
            "model": None,
            "arch": "fake",
            "dtype": "bfloat16",
            "device": "cpu",
            "batch_size": 1,
            "kv_cache": True,
            "meter": "fake",
        },
    )
    values.update(changes)
    return CalibrationContext(**values)
