"""The `hybridsim` command: one click group; each sub-command lives in its own module.

User errors (`HybridsimError`) become one line on stderr and exit code 2; bugs keep their traceback.
"""

from __future__ import annotations

import sys

import click

from ..errors import HybridsimError
from .profiles_cmd import profiles
from .run_cmd import compare, run
from .workload_cmd import workload


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hybridsim")
def cli() -> None:
    """Energy and latency of LLM inference on heterogeneous clusters."""


cli.add_command(run)
cli.add_command(compare)
cli.add_command(profiles)
cli.add_command(workload)


def _register_calibrate() -> None:
    # calibration/cli.py imports nothing heavy at module level; torch is imported when the command runs.
    from calibration.cli import calibrate

    cli.add_command(calibrate)


_register_calibrate()


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except HybridsimError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(error.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
