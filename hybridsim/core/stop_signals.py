"""How a run is stopped: Ctrl-C, `kill` and a closed terminal all end it the same way.

An operator stops a run with Ctrl-C (SIGINT); a batch scheduler, `timeout` or systemd sends SIGTERM; a
closed terminal or a dropped ssh session sends SIGHUP. Each becomes an exception raised in the main
thread wherever the run is (`KeyboardInterrupt` for Ctrl-C, `Terminated` for the other two), so the
same `finally` blocks run for all three: the staging folder of the unfinished results is removed and the
worker processes are ended. The program then says so in one line and exits with the shell's status for
that signal (128 + its number: 130, 143, 129).

Two short moments must not be cut in half, and inside `held()` a signal waits until they are over: the
renames that put finished results in place, and the start of worker processes, which must first learn
to die with their parent (`as_worker`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

from .errors import Interrupted

TERMINATING: dict[int, str] = {signal.SIGTERM: "terminated"}
"""Signals that end a run with `Terminated`, and the line the run ends with."""
if hasattr(signal, "SIGHUP"):  # not on Windows
    TERMINATING[signal.SIGHUP] = "hung up"
STOPPING = frozenset({signal.SIGINT, *TERMINATING})
"""Every signal that stops a run (Ctrl-C included)."""
_held: list[bool] = []
"""Non-empty inside `held()`."""
_arrived: list[int] = []
"""The stop signals that arrived inside `held()`, in order (a forked worker inherits the list)."""


class Terminated(BaseException):
    """SIGTERM or SIGHUP, raised like Ctrl-C's KeyboardInterrupt so that every `finally` and staging cleanup
    runs (a BaseException, so that no `except Exception` swallows it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def message(self) -> str:
        return TERMINATING.get(self.signum, "terminated")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def saved_and_stopped(stop: BaseException, saved: str) -> Interrupted:
    """The one line for work stopped by Ctrl-C, SIGTERM or SIGHUP that kept what it finished (`saved` says
    where), with that signal's exit status: raise it in place of `stop`."""
    word = stop.message if isinstance(stop, Terminated) else "interrupted"
    error = Interrupted(f"{word}: {saved}")
    error.exit_code = stop.exit_code if isinstance(stop, Terminated) else 130
    return error


def install() -> None:
    """In the main thread of a program: SIGTERM and SIGHUP raise `Terminated` (Ctrl-C keeps Python's
    KeyboardInterrupt)."""
    for signum in TERMINATING:
        signal.signal(signum, _terminate)


def _terminate(signum: int, frame: FrameType | None) -> None:
    # A second SIGTERM (a scheduler insisting) must not cut short the cleanup the first one started;
    # SIGKILL still ends the process, and the next run removes what that leaves.
    for other in TERMINATING:
        signal.signal(other, signal.SIG_IGN)
    raise Terminated(signum)


@contextlib.contextmanager
def held() -> Iterator[None]:
    """A stop signal that arrives inside the block takes effect just after it (main thread only: Python
    runs every signal handler there, whichever thread the kernel picked)."""
    if threading.current_thread() is not threading.main_thread() or _held:
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in STOPPING}
    _held.append(True)
    _arrived.clear()
    for signum in STOPPING:
        signal.signal(signum, _defer)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _held.clear()
        if _arrived:
            _deliver(_arrived[0], previous[_arrived[0]])


def _defer(signum: int, frame: FrameType | None) -> None:
    _arrived.append(signum)


def _deliver(signum: int, handler: Any) -> None:
    """What `handler` would have done with `signum` had it not been held."""
    if callable(handler):
        handler(signum, None)
    elif handler == signal.SIG_DFL:
        os.kill(os.getpid(), signum)


def as_worker() -> None:
    """In a worker process forked from a run (inside `held()`): Ctrl-C is the parent's to report (ignored
    here); SIGTERM and SIGHUP end the worker at once, those that came while it started included."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for signum in TERMINATING:
        signal.signal(signum, signal.SIG_DFL)
    _held.clear()
    for signum in _arrived:
        if signum in TERMINATING:
            os.kill(os.getpid(), signum)
