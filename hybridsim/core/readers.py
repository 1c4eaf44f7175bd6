"""Reading the files users hand us: a missing, unreadable or malformed file is one line naming it.

Every CSV and JSON a user can point hybridsim at (traces, workload tables, profiles, finished runs) goes
through these two functions, so the messages read the same everywhere.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from hybridsim.core.errors import HybridsimError


def read_csv_file(path: Path, what: str = "file", where: str = "") -> pd.DataFrame:
    """A CSV as a DataFrame; `what` names the file's role in the messages, `where` prefixes them."""
    path = Path(path)
    prefix = f"{where}: {path}" if where else str(path)
    if not path.is_file():
        raise HybridsimError(f"{prefix}: {what} not found")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise HybridsimError(f"{prefix}: unreadable CSV: {str(error).splitlines()[0]}") from None
    for column in [name for name in frame.columns if pd.api.types.is_object_dtype(frame[name])]:
        # pandas keeps an integer beyond uint64 (400 digits) as a Python int, which no float can hold
        # (pd.to_numeric raises OverflowError); as text it reads as inf, which every check refuses
        frame[column] = frame[column].map(lambda value: str(value) if type(value) is int else value)
    return frame


def read_json_file(path: Path, missing: str) -> Any:
    """A JSON document; `missing` is the message when the file is not there."""
    path = Path(path)
    if not path.is_file():
        raise HybridsimError(missing)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise HybridsimError(f"{path}:{error.lineno}: malformed JSON: {error.msg}") from None
    except UnicodeDecodeError:
        raise HybridsimError(f"{path}: not a UTF-8 text file") from None
    except RecursionError:  # `[[[[...` 100,000 deep
        raise HybridsimError(f"{path}: malformed JSON: nested too deeply") from None
