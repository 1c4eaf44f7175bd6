"""Worker processes that live and die with the run that started them.

A sweep's runs, and a plan's candidates, go to a pool of worker processes. If the operator stops the run
(Ctrl-C, `kill`, a closed terminal, a scheduler's SIGKILL), no worker may go on computing, or writing
per-request files into a staging folder no one will ever read. Each worker therefore asks the Linux kernel
to kill it when its parent dies (`prctl(PR_SET_PDEATHSIG, SIGKILL)`), and, where that is not available,
watches its parent's process id from a small thread and exits when it changes. The parent ends the pool
itself on any interruption (`terminate`, not a polite wait for the current runs), and workers leave
Ctrl-C to the parent so that one line, not one traceback per worker, reports it.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import TypeVar

from hybridsim.core import stop_signals

Task = TypeVar("Task")
Result = TypeVar("Result")

PR_SET_PDEATHSIG = 1
"""Linux prctl option: the signal this process receives when its parent thread exits."""
WATCH_INTERVAL_S = 0.5


def die_with_parent(parent_pid: int) -> None:
    """Worker initializer: end this process when `parent_pid` is gone, however it went."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the watchdog below still covers it
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True, name="parent-watchdog").start()
    stop_signals.as_worker()  # forked with the stop signals held: from here a SIGTERM ends this worker


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(WATCH_INTERVAL_S)
    os._exit(1)


class WorkerPool:
    """`workers` processes that die with this one; open for as many `imap`s as the run needs (a plan's
    batches). Leaving its `with` block normally lets the workers finish; leaving it by an exception (a
    failure, Ctrl-C, SIGTERM) ends them at once."""

    def __init__(self, workers: int) -> None:
        context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
        with stop_signals.held():  # a worker must not meet a stop signal before it knows how to take it
            self._pool = context.Pool(workers, initializer=die_with_parent, initargs=(os.getpid(),))

    def imap(self, function: Callable[[Task], Result], tasks: list[Task]) -> Iterator[Result]:
        """`function` over `tasks`, results in task order as they finish."""
        return self._pool.imap(function, tasks)

    def close(self) -> None:
        """Wait for the workers to finish what they were given, then let them go."""
        self._pool.close()
        self._pool.join()

    def terminate(self) -> None:
        """End every worker now, whatever it is doing."""
        self._pool.terminate()
        self._pool.join()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if kind is None:
            self.close()
        else:
            self.terminate()
