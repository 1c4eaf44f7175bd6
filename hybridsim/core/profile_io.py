"""Reading and writing profile directories (`profile.json` + `points.csv` [+ `trials.csv`]).

The format is described in `profile_model.py`; serving tables in `serving_io.py`. Writes are atomic;
`append_trials` adds rows to `trials.csv` one trial at a time so that an interrupted calibration keeps
everything measured so far.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from hybridsim.core.atomic import write_text_atomic
from hybridsim.core.errors import HybridsimError, shown
from hybridsim.core.jsonstyle import dump_json
from hybridsim.core.profile_checks import check_fit_numbers, check_points
from hybridsim.core.profile_model import POINT_COLUMNS, BilinearFit, Profile, ProfileMetadata, ServingTables
from hybridsim.core.readers import read_csv_file, read_json_file
from hybridsim.core.serving_io import load_serving, save_serving, serving_block

FORMAT_VERSION = 1
PROFILE_FILE = "profile.json"
POINTS_FILE = "points.csv"
TRIALS_FILE = "trials.csv"


def load_profile_dir(path: Path, name: str | None = None) -> Profile:
    path = Path(path)
    meta_path, points_path = path / PROFILE_FILE, path / POINTS_FILE
    document = read_json_file(meta_path, f"{path}: not a profile directory (no {PROFILE_FILE})")
    if not isinstance(document, dict):
        raise HybridsimError(f"{meta_path}: must hold a JSON object")
    serving: ServingTables | None = None
    if document.get("serving") is not None:
        serving = load_serving(path, document["serving"], meta_path)
    if points_path.is_file():
        points = _read_points(points_path)
    elif serving is not None:
        points = pd.DataFrame(columns=list(POINT_COLUMNS))  # serving-only: no per-request costs
    else:
        raise HybridsimError(f"{path}: profile has no {POINTS_FILE} (and no serving tables)")
    try:
        metadata = _metadata_from_dict(document["metadata"])
    except (KeyError, TypeError, AttributeError) as error:
        raise HybridsimError(f"{meta_path}: metadata: {error}") from None
    idle = metadata.idle_power_w
    if idle is not None and (isinstance(idle, bool) or not isinstance(idle, (int, float)) or not idle >= 0):
        raise HybridsimError(
            f"{meta_path}: metadata.idle_power_w: must be a number >= 0 (W) or null, got {idle!r}"
        )
    fit = document.get("paper_fit")
    paper_fit = None
    if fit:
        try:
            paper_fit = BilinearFit(
                energy_coefficients=check_fit_numbers(
                    fit["energy_coefficients"], f"{meta_path}: paper_fit.energy_coefficients"
                ),
                runtime_coefficients=check_fit_numbers(
                    fit["runtime_coefficients"], f"{meta_path}: paper_fit.runtime_coefficients"
                ),
                energy_scope=fit["energy_scope"],
                source=fit["source"],
                r2_energy=fit.get("r2_energy"),
                r2_runtime=fit.get("r2_runtime"),
                input_range=_optional_range(fit.get("input_range")),
                output_range=_optional_range(fit.get("output_range")),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise HybridsimError(f"{meta_path}: paper_fit: malformed ({error})") from None
    return Profile(
        name=name or document.get("name") or path.name,
        metadata=metadata,
        points=points,
        paper_fit=paper_fit,
        serving=serving,
    )


def _read_points(path: Path) -> pd.DataFrame:
    """`points.csv`, with every required column present and every numeric one numeric."""
    points = read_csv_file(path, POINTS_FILE)
    missing = [column for column in POINT_COLUMNS if column not in points.columns]
    if missing:
        raise HybridsimError(f"{path}: missing columns {', '.join(missing)}")
    if points.empty:
        raise HybridsimError(f"{path}: no measured points")
    for column in POINT_COLUMNS[1:]:
        if not pd.api.types.is_numeric_dtype(points[column]):
            row = int(pd.to_numeric(points[column], errors="coerce").isna().to_numpy().argmax())
            raise HybridsimError(
                f"{path}: row {row + 2}: {column} must be a number, got {shown(points[column].iloc[row])}"
            )
    check_points(points, path)
    return points


def profile_document(profile: Profile) -> dict[str, Any]:
    document: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "name": profile.name,
        "metadata": dataclasses.asdict(profile.metadata),
        "paper_fit": dataclasses.asdict(profile.paper_fit) if profile.paper_fit else None,
    }
    if profile.serving is not None:
        document["serving"] = serving_block(profile.serving)
    return document


def is_serving_only(profile: Profile) -> bool:
    """True for a profile that prices batched passes but carries no per-request points."""
    return profile.serving is not None and profile.points.empty


def save_profile_dir(profile: Profile, path: Path) -> None:
    """Write `profile.json`, `points.csv` and any serving tables (each atomically); `trials.csv` is left
    alone. A serving-only profile has no points.csv."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if profile.serving is not None:
        save_serving(profile.serving, path)
    if is_serving_only(profile):
        write_text_atomic(path / PROFILE_FILE, dump_json(profile_document(profile)))
        return
    columns = list(POINT_COLUMNS) + [c for c in profile.points.columns if c not in POINT_COLUMNS]
    points = profile.points[columns].sort_values(["sweep", "input_tokens", "output_tokens"])
    write_text_atomic(
        path / POINTS_FILE, points.to_csv(index=False, float_format="%.6g", lineterminator="\n")
    )
    write_text_atomic(path / PROFILE_FILE, dump_json(profile_document(profile)))


def append_trials(path: Path, rows: list[Mapping[str, Any]], filename: str = TRIALS_FILE) -> None:
    """Append trial rows to `filename` (`trials.csv`), writing the header on first use; flushed to disk at
    once."""
    if not rows:
        return
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    trials_path = path / filename
    fieldnames = list(rows[0].keys())
    new_file = not trials_path.exists() or trials_path.stat().st_size == 0
    if not new_file:
        _drop_torn_last_line(trials_path)
        with trials_path.open(newline="", encoding="utf-8") as handle:
            existing = next(csv.reader(handle), [])
        if existing != fieldnames:
            raise HybridsimError(
                f"{trials_path}: columns differ from this run's ({existing} vs {fieldnames})"
            )
    with trials_path.open("a", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fieldnames, lineterminator="\n")
        if new_file:
            writer.writeheader()
        writer.writerows(rows)
        handle.flush()
        os.fsync(handle.fileno())


def _drop_torn_last_line(path: Path) -> None:
    """A crash in the middle of an append leaves a line without its newline: cut
    it, keep every whole trial.
    """
    with path.open("rb+") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(size - 1, 0))
        if handle.read(1) == b"\n":
            return
        handle.seek(0)
        whole = handle.read().rfind(b"\n") + 1
        handle.truncate(whole)
    warnings.warn(f"{path}: dropped a torn last line (an interrupted write)", stacklevel=3)


def read_trials(path: Path, filename: str = TRIALS_FILE) -> pd.DataFrame:
    trials_path = Path(path) / filename
    if not trials_path.exists():
        return pd.DataFrame()
    if trials_path.stat().st_size:
        _drop_torn_last_line(trials_path)  # a run killed mid-append: keep every whole trial
    return pd.read_csv(trials_path)


def _optional_range(values: Any) -> tuple[float, float] | None:
    if not values:
        return None
    if not isinstance(values, list) or len(values) != 2:  # [8] was an IndexError
        raise ValueError(f"a range is [low, high], got {values!r}")
    low, high = float(values[0]), float(values[1])
    if not (math.isfinite(low) and math.isfinite(high) and low <= high):
        raise ValueError(f"a range is [low, high] of finite numbers, got {values!r}")
    return low, high


def _metadata_from_dict(data: dict[str, Any]) -> ProfileMetadata:
    known = {field.name for field in dataclasses.fields(ProfileMetadata)}
    values = {key: value for key, value in data.items() if key in known}
    values["notes"] = tuple(values.get("notes", ()))
    unknown = {key: value for key, value in data.items() if key not in known}
    if unknown:
        values["extra"] = {**values.get("extra", {}), **unknown}
    return ProfileMetadata(**values)
