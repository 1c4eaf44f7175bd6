"""Running a click command as a program: a user's mistake is one line on stderr and exit code 2.

Both `hybridsim` and `python -m hybridsim.calibration.cli` go through `run_main`, so the messages, the
warning format and the exit codes are the same whichever way a command is started. Ctrl-C, SIGTERM and
SIGHUP end a command the same way too (`stop_signals`): its cleanup runs, then one line and 130/143/129.
"""

from __future__ import annotations

import contextlib
import errno
import sys
import warnings
from typing import TextIO

import click

from . import stop_signals
from .errors import HybridsimError, Interrupted
from .stop_signals import Terminated

USER_ERRNOS = frozenset(
    {
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EROFS,
        errno.EACCES,
        errno.EPERM,
        errno.EFBIG,
        errno.ENAMETOOLONG,
    }
)
"""Operating-system errors that are the place's fault (full disk, read-only, no permission) or the path's
(a name too long for the file system): one line."""


def run_main(command: click.Command, prog_name: str) -> None:
    """Run a click command as a program: every user error is one line on stderr and a non-zero exit."""
    warnings.showwarning = _show_warning
    for stream in (sys.stdout, sys.stderr):  # a path holding bytes that are not UTF-8 is printed, not fatal
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
    stop_signals.install()
    try:
        command.main(prog_name=prog_name, standalone_mode=False)
    except Terminated as stop:
        _stopped(stop.message, stop.exit_code)
    except ValueError as error:
        if "null byte" not in str(error):
            raise
        _fail("a path or option contains a NUL byte (\\0)", 2)
    except OSError as error:
        if error.errno not in USER_ERRNOS:
            raise
        place = f"{error.filename}: " if error.filename else ""
        _fail(f"{place}{error.strerror}", 2)
    except Interrupted as error:
        click.echo(str(error), err=True)
        sys.exit(error.exit_code)
    except HybridsimError as error:
        _fail(str(error), error.exit_code)
    except click.exceptions.NoArgsIsHelpError as error:  # `hybridsim` alone: click's help, as an error
        command_path = error.ctx.command_path
        names = ", ".join(error.ctx.command.list_commands(error.ctx))  # type: ignore[attr-defined]
        _fail(f"{command_path}: name a command: {names} (see '{command_path} --help')", 2)
    except click.UsageError as error:
        where = error.ctx.command_path if error.ctx else prog_name
        _fail(f"{where}: {error.format_message()} (see '{where} --help')", error.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        _stopped("aborted", 130)
    except click.ClickException as error:
        _fail(error.format_message(), error.exit_code)


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """A warning is for the user: one line, no source location."""
    click.echo(f"warning: {message}", err=True)


def _fail(message: str, exit_code: int) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(exit_code)


def _stopped(message: str, exit_code: int) -> None:
    """A stopped command's one line (after SIGHUP the terminal may be gone: the exit status still tells)."""
    with contextlib.suppress(OSError):
        click.echo(message, err=True)
    sys.exit(exit_code)
