"""Results are written atomically: a run either leaves a complete output directory or none at all.

Writers fill a hidden staging directory beside the target and rename it into place at the end, so a
crash, an interrupt or a validation error half-way leaves nothing a reader could mistake for a result.
Which folders may be filled at all, and which files in them are hybridsim's to replace, is decided by
`output_guard` (a marker file in every output directory). A staging folder carries the id of the process
that made it, so the next run into the same place removes what a killed run (SIGKILL, power loss) left.
A run stopped by Ctrl-C, SIGTERM or SIGHUP removes its own (`stop_signals`); such a signal waits while
the staging folder is made and while the finished results are renamed into place.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

from hybridsim.core.errors import HybridsimError
from hybridsim.core.output_guard import (
    MARKER,
    ExistingOutput,
    check_output_path,
    existing_output,
    files_under,
    marker_text,
    refuse_foreign,
)
from hybridsim.core.stop_signals import held

DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG})
"""Write failures that are the place's fault, not the program's: reported as one line."""


@contextlib.contextmanager
def staged_directory(
    target: Path,
    kind: str = "run",
    *,
    replace: bool = True,
    overwrite: bool = False,
    option: str = "--out",
) -> Iterator[Path]:
    """Yield an empty staging directory; on success its files become `target`'s, on failure it vanishes.

    `kind` names the output (`run`, `compare`, ...). A previous output of the same kind is replaced whole
    (unless `replace` is False: `--no-overwrite`); an empty or missing folder is filled; a folder holding
    anything else is refused unless `overwrite` (`--overwrite`), and then only hybridsim's files are
    written or removed there.
    """
    target = Path(target)
    check_output_path(target, option)
    existing = existing_output(target, kind)
    if existing.state == "same" and not replace and not overwrite:
        raise HybridsimError(
            f"{option} {target}: output directory exists and may not be replaced (--no-overwrite)"
        )
    if existing.state in ("foreign", "other", "legacy") and not overwrite:
        refuse_foreign(target, existing, kind, option)
    clean_stale(target)
    staging: Path | None = None
    try:
        with held():  # a stop signal waits until `staging` is known, so that the cleanup below removes it
            staging = _make_staging(target, option)
        yield staging
        files = files_under(staging)
        (staging / MARKER).write_text(marker_text(kind, files), encoding="utf-8")
        with held():  # the renames that put the results in place are never cut in half
            _commit(staging, target, existing, files, option)
    except BaseException as error:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        if isinstance(error, OSError) and error.errno in DISK_ERRNOS:
            raise HybridsimError(
                f"{option} {target}: cannot write the results: {error.strerror}; nothing was changed"
            ) from None
        raise


@contextlib.contextmanager
def import_directory(target: Path, builtin: Path, kind: str, *, overwrite: bool = False) -> Iterator[Path]:
    """Where an importer writes the tables it derives: the folder to fill, given to the `with` block.

    `builtin` is the folder inside hybridsim that the importer regenerates (its default `--out`): every
    file the importer writes there is one hybridsim shipped, so it is rewritten in place, file by file.
    Any other `--out` is an output folder like a run's (`staged_directory`, kind `kind`): filled whole or
    not at all, a previous import of the same kind replaced, a folder of other files refused unless
    `overwrite`, and a user's file never replaced.
    """
    if os.path.realpath(target) == os.path.realpath(builtin):
        yield Path(target)
        return
    with staged_directory(Path(target), kind, overwrite=overwrite) as staging:
        yield staging


def _make_staging(target: Path, option: str) -> Path:
    """An empty hidden folder beside `target`, named after this process (see `clean_stale`)."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-{os.getpid()}-", dir=target.parent))
        os.chmod(staging, 0o777 & ~_current_umask())  # mkdtemp makes 0700; give the run ordinary permissions
    except OSError as error:
        raise HybridsimError(f"{option} {target}: cannot write here: {error.strerror}") from None
    return staging


def _commit(staging: Path, target: Path, existing: ExistingOutput, files: list[str], option: str) -> None:
    """Put the staged files in place: one rename where the folder holds only hybridsim's files."""
    if existing.state in ("absent", "empty"):
        os.replace(staging, target)  # rename onto an empty directory is allowed
        return
    present = set(files_under(target))
    if existing.state == "same" and present <= existing.own_files:
        old = target.parent / f".{target.name}.old-{os.getpid()}"
        os.replace(target, old)
        os.replace(staging, target)
        shutil.rmtree(old, ignore_errors=True)
        return
    # A folder that also holds the user's files: ours are moved in one by one, theirs never touched.
    own = existing.own_files | (present & set(files) if existing.state == "legacy" else set())
    clashes = sorted((present - own) & set(files))
    if clashes:
        raise HybridsimError(
            f"{option} {target}: your file {clashes[0]} has the name of one hybridsim writes; "
            "move it or name another folder (nothing was changed)"
        )
    for name in files:
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / name, target / name)
    for name in sorted(existing.own_files - set(files)):
        with contextlib.suppress(FileNotFoundError):
            (target / name).unlink()
        _prune_empty_parents(target, target / name)
    os.replace(staging / MARKER, target / MARKER)
    shutil.rmtree(staging, ignore_errors=True)


def _prune_empty_parents(root: Path, path: Path) -> None:
    folder = path.parent
    while folder != root and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


def clean_stale(target: Path) -> list[Path]:
    """Remove what runs into `target` that were killed left beside it; restore a result lost mid-swap.

    `.NAME.staging-PID-*` folders of a dead process are deleted; a `.NAME.old-PID` folder of a dead process
    is the previous result caught between two renames: it is put back when `target` is missing, else
    deleted. Folders of a live process (another run going on now) are left alone. Returns what was removed.
    """
    target = Path(target)
    parent, removed = target.parent, list[Path]()
    if not parent.is_dir():
        return removed
    for entry in sorted(parent.iterdir()):
        for tag in ("staging", "old"):
            prefix = f".{target.name}.{tag}-"
            if not entry.name.startswith(prefix) or not entry.is_dir():
                continue
            pid = entry.name[len(prefix) :].split("-")[0]
            if not pid.isdigit() or _alive(int(pid)):
                continue
            if tag == "old" and not target.exists():
                os.replace(entry, target)
                warnings.warn(
                    f"{target}: restored the previous results a killed run had moved aside", stacklevel=3
                )
                continue
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    if removed:
        warnings.warn(
            f"{parent}: removed {len(removed)} unfinished folder(s) left by a killed run "
            f"({removed[0].name}{', ...' if len(removed) > 1 else ''})",
            stacklevel=3,
        )
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
