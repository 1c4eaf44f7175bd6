"""A sweep's worker processes die with the run: SIGKILL, SIGTERM or Ctrl-C of the parent leaves no orphan
computing or writing, and the interrupted run says so in one line."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest
from process_watch import alive, children, slow_simulation, start_run

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

SLOW = slow_simulation()


@pytest.mark.parametrize(
    ("sig", "exit_code", "last_line"),
    [(signal.SIGKILL, -9, None), (signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130, "aborted")],
)
def test_workers_die_with_their_parent(
    tmp_path: Path, sig: int, exit_code: int, last_line: str | None
) -> None:
    (tmp_path / "slow.yaml").write_text(SLOW)
    parent = start_run(tmp_path)
    deadline = time.monotonic() + 60
    while len(workers := children(parent.pid)) < 2:
        assert parent.poll() is None and time.monotonic() < deadline, parent.communicate()
        time.sleep(0.1)
    time.sleep(0.5)  # the workers are computing now
    parent.send_signal(sig)
    _, stderr = parent.communicate(timeout=60)
    assert parent.returncode == exit_code, stderr
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    orphans = [pid for pid in workers if alive(pid)]
    for pid in orphans:  # do not leave them running even when the test fails
        os.kill(pid, signal.SIGKILL)
    assert not orphans, f"workers {orphans} outlived their parent"
    assert not (tmp_path / "out").exists()
    if last_line is not None:
        # one line, no traceback from any worker (click ends the terminal's "^C" line with a newline first)
        assert [line for line in stderr.splitlines() if line] == [last_line]
        assert sorted(p.name for p in tmp_path.iterdir()) == ["slow.yaml"]  # its staging folder is gone
