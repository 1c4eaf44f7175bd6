"""Worker processes that live and die with the run that started them.

A sweep's runs go to a pool of worker processes. If the operator stops the run (Ctrl-C, `kill`, a
scheduler's SIGKILL), no worker may go on computing, or writing per-request files into a staging folder no
one will ever read. Each worker therefore asks the Linux kernel to kill it when its parent dies
(`prctl(PR_SET_PDEATHSIG, SIGKILL)`), and, where that is not available, watches its parent's process id
from a small thread and exits when it changes. The parent ends the pool itself on any interruption
(`terminate`, not a polite wait for the current runs), and workers leave Ctrl-C to the parent so that one
line, not one traceback per worker, reports it.
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
from typing import TypeVar

Task = TypeVar("Task")
Result = TypeVar("Result")

PR_SET_PDEATHSIG = 1
"""Linux prctl option: the signal this process receives when its parent thread exits."""
WATCH_INTERVAL_S = 0.5


def die_with_parent(parent_pid: int) -> None:
    """Worker initializer: end this process when `parent_pid` is gone, however it went."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to report
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the watchdog below still covers it
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True, name="parent-watchdog").start()


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(WATCH_INTERVAL_S)
    os._exit(1)


def run_in_workers(function: Callable[[Task], Result], tasks: list[Task], workers: int) -> Iterator[Result]:
    """`function` over `tasks` in `workers` processes, results in task order; the first failure (or an
    interruption of the parent) ends every worker at once."""
    context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    pool = context.Pool(workers, initializer=die_with_parent, initargs=(os.getpid(),))
    try:
        yield from pool.imap(function, tasks)
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.close()
        pool.join()
