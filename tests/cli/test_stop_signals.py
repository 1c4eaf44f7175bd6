"""A run stopped by `kill` (SIGTERM) or a closed terminal (SIGHUP) ends as Ctrl-C ends it: its staging
folder removed, its worker processes gone, one line on stderr, the shell's exit status (128 + signal), and
--out as it was before (absent, or the previous results byte for byte)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from process_watch import SLOW_SIMULATION, alive, children, slow_simulation, start_run

from hybridsim.core import atomic, stop_signals
from hybridsim.core.output_guard import MARKER, marker_text

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

SCENARIOS = {
    "simulation": slow_simulation(),
    "plan": (
        "kind: plan\nbase:\n"
        + textwrap.indent(SLOW_SIMULATION, "  ")
        + "space: {cluster.m1.count: [4, 8]}\n"
        + "policies: [{name: all-a100, policy: all_on, params: {system: a100}}]\n"
        + "seeds: 2\nsearch: {method: grid}\nexecution: {workers: 2}\n"
    ),
}
"""A sweep of two policies, and a plan whose first candidate's two seeds go to two workers."""
WAIT_S = 60.0
"""Start-up may be slow on a loaded machine; the test waits on conditions, never this long when healthy."""
STOP_S = 20.0
"""A stopped run ends at once (well under a second); one of these runs would take minutes to finish."""


def outlived(workers: list[int]) -> list[int]:
    """The workers still alive a few seconds after their run ended; killed, so that none keeps running."""
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    orphans = [pid for pid in workers if alive(pid)]
    for pid in orphans:
        os.kill(pid, signal.SIGKILL)
    return orphans


def snapshot(root: Path) -> dict[str, str]:
    """Every entry under `root` (hidden ones too): relative path -> sha256 of a file's bytes, or 'dir'."""
    found = {}
    for path in sorted(root.rglob("*")):
        found[str(path.relative_to(root))] = (
            hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        )
    return found


def wait_for(condition: str, check: Callable[[], bool], process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not check():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            _, stderr = process.communicate()
            pytest.fail(f"never saw {condition} (exit {process.returncode}): {stderr[-2000:]}")
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("kind", "sig", "exit_code", "line", "previous"),
    [
        ("plan", signal.SIGTERM, 143, "terminated", False),
        ("plan", signal.SIGHUP, 129, "hung up", True),
        ("simulation", signal.SIGTERM, 143, "terminated", True),
        ("simulation", signal.SIGHUP, 129, "hung up", False),
    ],
)
def test_a_stopped_run_leaves_nothing_behind(
    tmp_path: Path, kind: str, sig: int, exit_code: int, line: str, previous: bool
) -> None:
    (tmp_path / "slow.yaml").write_text(SCENARIOS[kind])
    if previous:  # the results of an earlier run, which a stopped run must not touch
        (tmp_path / "out").mkdir()
        (tmp_path / "out" / "summary.json").write_text('{"kind": "earlier"}\n')
        (tmp_path / "out" / MARKER).write_text(marker_text("run", ["summary.json"]))
    before = snapshot(tmp_path)
    run = start_run(tmp_path)
    workers: list[int] = []
    try:
        wait_for("the staging folder", lambda: any(tmp_path.glob(".out.staging-*")), run)
        wait_for("two worker processes", lambda: len(children(run.pid)) >= 2, run)
        workers = children(run.pid)
        run.send_signal(sig)
        try:
            _, stderr = run.communicate(timeout=STOP_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {STOP_S:g} s after the signal (waiting for its workers?)")
    finally:
        run.kill()  # a no-op when it has ended, as it should have
        orphans = outlived(workers)
    assert run.returncode == exit_code, stderr
    assert stderr.splitlines() == [line]
    assert not orphans, f"workers {orphans} outlived the run"
    assert snapshot(tmp_path) == before  # no staging folder, no --out, or the earlier one byte for byte


@pytest.fixture
def stop_handlers() -> Iterator[None]:
    """`stop_signals.install()` in this process, undone afterwards."""
    saved = {signum: signal.getsignal(signum) for signum in stop_signals.TERMINATING}
    stop_signals.install()
    try:
        yield
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


def test_a_signal_during_the_commit_waits_until_the_results_are_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stop_handlers: None
) -> None:
    """SIGTERM while the results are being renamed into place: the renames finish, then the run stops."""
    real_commit = atomic._commit

    def commit_under_fire(*args: Any) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        real_commit(*args)

    monkeypatch.setattr(atomic, "_commit", commit_under_fire)
    out = tmp_path / "out"
    with pytest.raises(stop_signals.Terminated) as stopped, atomic.staged_directory(out) as staging:
        (staging / "summary.json").write_text("{}\n")
    assert stopped.value.exit_code == 143
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "summary.json"]


def test_a_second_sigterm_does_not_cut_the_cleanup_short(stop_handlers: None) -> None:
    cleaned = False
    with pytest.raises(stop_signals.Terminated):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the signal interrupts this at once
        finally:
            os.kill(os.getpid(), signal.SIGTERM)  # ignored: the first one is being handled
            cleaned = True
    assert cleaned


@pytest.mark.parametrize(
    ("sig", "stop"), [(signal.SIGINT, KeyboardInterrupt), (signal.SIGHUP, stop_signals.Terminated)]
)
def test_a_held_block_finishes_before_the_stop(
    sig: int, stop: type[BaseException], stop_handlers: None
) -> None:
    steps = []
    with pytest.raises(stop), stop_signals.held():
        os.kill(os.getpid(), sig)
        time.sleep(0.05)  # the handler has run by now; it only noted the signal
        steps.append("finished")
    assert steps == ["finished"]
