"""Shared fixtures. Tests that read the paper's raw data skip when ../shared is absent."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

CliRun = Callable[..., "subprocess.CompletedProcess[str]"]
"""`hybridsim(*args, cwd=None, timeout=600)`: the `hybridsim` command in a fresh process, output captured."""

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not (SHARED_DIR / "reference" / "wilkins2024").is_dir():
        pytest.skip("../shared (the paper's reference data) is not present")
    return SHARED_DIR


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


def _run_hybridsim(
    *args: str, cwd: Path | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from hybridsim.cli import main; main()", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def hybridsim() -> CliRun:
    """The command line as a user runs it (a new process: exit codes, stdout and stderr are the real ones)."""
    return _run_hybridsim
