"""Results are written atomically: a run either leaves a complete output directory or none at all.

Writers fill a hidden staging directory beside the target and rename it into place at the end, so a
crash, an interrupt or a validation error half-way leaves nothing a reader could mistake for a result.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hybridsim.core.errors import HybridsimError


@contextlib.contextmanager
def staged_directory(target: Path, overwrite: bool = True) -> Iterator[Path]:
    """Yield an empty staging directory; on success it replaces `target`, on failure it vanishes."""
    target = Path(target)
    if target.exists() and not overwrite:
        raise HybridsimError(f"{target}: output directory exists and may not be replaced (--no-overwrite)")
    if target.exists() and not target.is_dir():
        raise HybridsimError(f"{target}: exists and is not a directory")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-", dir=target.parent))
    try:
        os.chmod(staging, 0o777 & ~_current_umask())  # mkdtemp makes 0700; give the run ordinary permissions
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    old = None
    if target.exists():
        old = target.parent / f".{target.name}.old-{os.getpid()}"
        os.replace(target, old)
    os.replace(staging, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_text_atomic(path: Path, text: str) -> None:
    """Write a text file (UTF-8, newlines as given) atomically: see `write_bytes_atomic`."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write a file so that readers see either the old content or the new, never a torn write."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.chmod(tmp, 0o666 & ~_current_umask())  # mkstemp makes 0600; give the file ordinary permissions
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def dump_json(data: Any) -> str:
    """The one JSON style of every file hybridsim writes: sorted keys, two-space indent, newline at end."""
    return json.dumps(data, indent=2, sort_keys=True, allow_nan=False, default=_jsonable) + "\n"


def _jsonable(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
