"""Profiles by name: the built-ins shipped with hybridsim (`system/model`) or any profile directory.

Some built-ins price whole requests (`points.csv`), some price the passes of a batching engine (serving
tables, e.g. `splitwise-a100/llama2-70b-tp8`); a few may do both. A scenario names a profile as
`m1-pro/llama2-7b` or as a path to a directory that calibration wrote; both resolve here, once per process.
A relative path is read against the scenario's folder (`base_dir`), like every other path in a scenario
(a `Profile` is immutable; a directory rewritten while the process runs is
not re-read).
"""

from __future__ import annotations

import functools
from pathlib import Path

from hybridsim.core.errors import HybridsimError
from hybridsim.core.profile_io import POINTS_FILE, PROFILE_FILE, load_profile_dir
from hybridsim.core.profile_model import Profile
from hybridsim.core.serving_io import PREFILL_FILE

BUILTIN_DIR = Path(__file__).resolve().parents[1] / "data" / "profiles"


def list_builtin() -> list[str]:
    """Names of the built-in profiles, sorted (`system/model`)."""
    return sorted(
        path.parent.relative_to(BUILTIN_DIR).as_posix() for path in BUILTIN_DIR.glob(f"*/*/{PROFILE_FILE}")
    )


def list_builtin_request_level() -> list[str]:
    """Built-ins that price whole requests served alone (they have measured points)."""
    return [name for name in list_builtin() if (BUILTIN_DIR / name / POINTS_FILE).is_file()]


def list_builtin_serving() -> list[str]:
    """Built-ins that carry serving tables (per-pass costs for continuous batching)."""
    return [name for name in list_builtin() if (BUILTIN_DIR / name / PREFILL_FILE).is_file()]


def load_profile(name_or_path: str, base_dir: Path | None = None) -> Profile:
    """The built-in profile `name_or_path`, or the profile directory at that path
    (relative: to `base_dir`).
    """
    name = str(name_or_path)
    if base_dir is not None and name not in list_builtin():
        path = Path(name).expanduser()
        if not path.is_absolute():
            name = str(Path(base_dir) / path)
    return _load(name)


@functools.cache
def _load(name_or_path: str) -> Profile:
    if name_or_path in list_builtin():
        return load_profile_dir(BUILTIN_DIR / name_or_path, name=name_or_path)
    path = Path(name_or_path).expanduser()
    try:
        is_dir = path.is_dir()
    except OSError as error:  # a name too long for a path, a loop of links
        raise HybridsimError(f"profile {name_or_path!r}: {error.strerror}") from None
    if is_dir:
        return load_profile_dir(path)
    raise HybridsimError(
        f"profile {name_or_path!r}: neither a built-in name nor a profile directory; "
        f"built-ins: {', '.join(list_builtin())}"
    )
