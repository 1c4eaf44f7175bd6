"""Watching a command's processes from outside through /proc (Linux): its children, and whether each lives."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SLOW_SIMULATION = """\
kind: simulation
seed: 1
cluster:
  m1: {profile: m1-pro/llama2-7b, count: 4}
  a100: {profile: swing-a100/llama2-7b, count: 1, queue: shared}
cost_model: {method: interpolated, out_of_range: clamp}
workload: {dataset: alpaca}
arrival: {process: poisson, rate: 0.5, requests: 2000000}
policies:
  - {name: all-a100, policy: all_on, params: {system: a100}}
  - {name: in-32, policy: input_threshold, params: {threshold: 32, below: m1, above: a100}}
"""
"""Two million requests under two policies: every run is minutes long, so a signal always finds it mid-way."""


def slow_simulation(workers: int = 2) -> str:
    """`SLOW_SIMULATION` with `workers` worker processes (its two policies run side by side)."""
    return f"workers: {workers}\n{SLOW_SIMULATION}"


def children(pid: int) -> list[int]:
    """The process ids of `pid`'s children, every thread's."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        found += [int(part) for part in task.read_text().split()]
    return found


def alive(pid: int) -> bool:
    """Whether `pid` still runs (a zombie, waiting for its parent to reap it, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def start_run(cwd: Path, scenario: str = "slow.yaml") -> subprocess.Popen[str]:
    """`hybridsim run <scenario> --out out` in `cwd`, as a process of its own (its output piped)."""
    return subprocess.Popen(
        [sys.executable, "-c", "from hybridsim.cli import main; main()", "run", scenario, "--out", "out"],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
