"""The folder a calibration writes into (`--out`): checked before anything slow, then made ready.

A calibration owns only the files it writes (OWN_FILES) and marks the folder as its own; `--resume`
continues what is there, `--overwrite` removes only those files, and a folder holding anything else (another
hybridsim output, or files hybridsim did not write) is refused in one line. Shared by the request sweep and
`calibrate --serving`.
"""

from __future__ import annotations

from pathlib import Path

from hybridsim.core.atomic import write_text_atomic
from hybridsim.core.errors import HybridsimError
from hybridsim.core.output_guard import (
    MARKER,
    check_output_path,
    existing_output,
    marker_text,
    refuse_foreign,
)

OWN_FILES = (
    "trials.csv",
    "points.csv",
    "profile.json",
    "calibration.json",
    "serving_trials.csv",
    "serving_prefill.csv",
    "serving_decode.csv",
)
"""The files a calibration writes in --out; with --overwrite only these are removed, never others there."""
KIND = "calibration"
"""The kind of output a calibration directory's marker names."""


def prepare_out_dir(out_dir: Path, resume: bool, overwrite: bool, apply: bool) -> None:
    """Check (`apply=False`, before anything slow) and then make ready the output directory."""
    if resume and overwrite:
        raise HybridsimError("calibrate: --resume and --overwrite contradict each other")
    check_output_path(out_dir)
    present = [name for name in OWN_FILES if (out_dir / name).exists()]
    existing = existing_output(out_dir, KIND)
    if existing.state == "other":
        raise HybridsimError(
            f"--out {out_dir}: holds a hybridsim {existing.kind} output, not a "
            "calibration; name another folder"
        )
    if existing.state == "foreign" and not present and not overwrite:
        refuse_foreign(out_dir, existing, KIND, "--out")
    if present and not (resume or overwrite):
        raise HybridsimError(
            f"--out {out_dir}: holds a calibration already ({', '.join(present)}); "
            "pass --resume to continue it or --overwrite to start over"
        )
    if apply:
        for name in present if overwrite else ():
            (out_dir / name).unlink()
        out_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out_dir / MARKER, marker_text(KIND, list(OWN_FILES)))
