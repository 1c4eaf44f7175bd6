"""Watching a command's processes from outside through /proc (Linux): its children, and whether each lives."""

from __future__ import annotations

from pathlib import Path


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
