"""The one JSON style of every file hybridsim writes (summaries, profiles, markers):
stable bytes for stable data.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


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
