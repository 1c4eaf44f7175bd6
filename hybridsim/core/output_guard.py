"""Where results may go: a user's folder is theirs, and hybridsim only ever replaces what it wrote itself.

An operator types `--out ~/papers` or `--out .` without thinking twice; the tool must. Every directory
hybridsim fills carries a small marker, `.hybridsim-run.json`, naming the kind of output (`run`,
`compare`, `calibration`) and every file written. With that marker the next run knows which files are its
own: a previous output of the same kind is replaced; a folder holding anything else is refused unless the
user says `--overwrite`, and even then only hybridsim's files are written beside the user's, never over
them. Places that no output may ever take (the working directory, the home directory, `/`, a system
directory, a path through a file, a read-only or full file system) are refused before anything is made.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from hybridsim.core.errors import HybridsimError
from hybridsim.core.jsonstyle import dump_json

MARKER = ".hybridsim-run.json"
"""The file in every output directory that says which kind of output it is and which files are hybridsim's."""
LEGACY_RUN_FILES = ("summary.json", "scenario.resolved.yaml")
"""A run folder written before the marker existed holds both; with --overwrite its files of the same names
as the new run's are replaced (hybridsim wrote them), every other file is kept."""
SYSTEM_ROOTS = (Path("/proc"), Path("/sys"), Path("/dev"))
"""Directories no result may be written under."""


@dataclass(frozen=True)
class ExistingOutput:
    """What an output path holds now."""

    state: str
    """'absent', 'empty', 'same' (a previous output of this kind), 'other' (of another kind), 'legacy' (a run
    written before outputs carried a marker) or 'foreign'."""
    own_files: frozenset[str] = frozenset()
    """Files (relative POSIX paths) a previous hybridsim output listed in its marker."""
    kind: str | None = None
    """The kind named by the marker, where there is one."""


MAX_DEPTH = 256
"""Most folders an output path may nest (the deepest real ones hold a few dozen)."""


def check_output_path(target: Path, option: str = "--out", *, directory: bool = True) -> Path:
    """Refuse places no output may take; return the absolute path. Nothing is created or changed."""
    text = os.fspath(target)
    where = f"{option} {text!r}" if text.strip() == "" else f"{option} {text}"
    if text.strip() == "" or "\0" in text:
        raise HybridsimError(f"{where}: not a path; name a new folder for the results")
    if os.path.islink(text) and not os.path.exists(text):  # a rename onto the link fails half-way
        raise HybridsimError(f"{where}: is a symbolic link to {os.readlink(text)}, which does not exist")
    absolute = Path(os.path.realpath(os.path.abspath(text)))
    if len(absolute.parts) > MAX_DEPTH:  # Path.mkdir(parents=True) recurses once per missing folder
        raise HybridsimError(f"{where}: {len(absolute.parts):,} folders deep; at most {MAX_DEPTH}")
    kind = "folder" if directory else "file"
    protected = {
        Path("/"): "the root directory",
        _real(Path.home()): "your home directory",
        _real(Path.cwd()): "the working directory",
    }
    for place, name in protected.items():
        if absolute == place:
            raise HybridsimError(f"{where}: is {name}; name a new {kind} for the results")
    for place, name in protected.items():
        if directory and place.is_relative_to(absolute):
            raise HybridsimError(f"{where}: holds {name}; name a new folder for the results")
    for root in SYSTEM_ROOTS:
        if absolute.is_relative_to(root):
            raise HybridsimError(f"{where}: is under the system directory {root}; results cannot go there")
    ancestor = absolute.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise HybridsimError(f"{where}: is inside a file ({ancestor} is a file, not a folder)")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise HybridsimError(f"{where}: {ancestor} is not writable (read-only file system or no permission)")
    stats = os.statvfs(ancestor)
    if stats.f_bavail == 0 or (stats.f_files and stats.f_favail == 0):
        raise HybridsimError(f"{where}: the file system of {ancestor} is full")
    if absolute.exists() and directory and not absolute.is_dir():
        raise HybridsimError(f"{where}: exists and is a file, not a folder")
    if absolute.exists() and not directory and not absolute.is_file():
        raise HybridsimError(f"{where}: exists and is not a file")
    return absolute


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def existing_output(target: Path, kind: str) -> ExistingOutput:
    """Classify what `target` holds today (see `ExistingOutput.state`)."""
    target = Path(target)
    if not target.exists():
        return ExistingOutput("absent")
    with os.scandir(target) as entries:
        if next(entries, None) is None:
            return ExistingOutput("empty")
    marker = read_marker(target)
    if marker is None and kind == "run" and all((target / name).is_file() for name in LEGACY_RUN_FILES):
        return ExistingOutput("legacy", kind="run")
    if marker is None:
        return ExistingOutput("foreign")
    marked_kind, files = marker
    return ExistingOutput("same" if marked_kind == kind else "other", frozenset(files), marked_kind)


def read_marker(target: Path) -> tuple[str, list[str]] | None:
    """(kind, files) from a directory's marker; None where there is no readable marker."""
    try:
        data = json.loads((Path(target) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("kind"), str):
        return None
    files = data.get("files")
    if not isinstance(files, list) or not all(
        isinstance(name, str) and _safe_relative(name) for name in files
    ):
        return None
    return data["kind"], files


def _safe_relative(name: str) -> bool:
    """A marker may only name files inside its own directory (no `..`, no absolute paths)."""
    path = Path(name)
    return bool(name) and not path.is_absolute() and ".." not in path.parts


def marker_text(kind: str, files: list[str]) -> str:
    """The marker's content: deterministic (no dates), so that two identical runs are byte-identical."""
    return dump_json({"kind": kind, "files": sorted(files), "written_by": "hybridsim"})


def files_under(root: Path) -> list[str]:
    """Every regular file under `root` as a relative POSIX path, the marker excepted."""
    found = []
    for folder, _, names in os.walk(root):
        for name in names:
            relative = (Path(folder) / name).relative_to(root).as_posix()
            if relative != MARKER:
                found.append(relative)
    return sorted(found)


def refuse_foreign(target: Path, existing: ExistingOutput, kind: str, option: str) -> None:
    """The one-line refusal for a folder that holds files hybridsim did not write there as `kind`."""
    with os.scandir(target) as entries:
        names = sorted(entry.name for entry in entries)
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    what = {
        "other": f"a hybridsim {existing.kind} output, not a {kind} output",
        "legacy": "a run written before hybridsim marked its folders",
    }.get(existing.state, "files hybridsim did not write")
    raise HybridsimError(
        f"{option} {target}: holds {what} ({shown}); name a new folder, or pass --overwrite to write "
        "hybridsim's files beside them (yours are never deleted)"
    )


def check_output_file(path: Path, option: str, overwrite: bool) -> Path:
    """A single output file (`--plot`): refused where no output may go, or where a file already is
    (unless `--overwrite`: hybridsim cannot tell its own plot from a user's file of the same name)."""
    absolute = check_output_path(path, option, directory=False)
    if absolute.exists() and not overwrite:
        raise HybridsimError(f"{option} {path}: the file exists; pass --overwrite to replace it")
    return absolute
