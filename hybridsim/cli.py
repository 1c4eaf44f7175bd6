"""The `hybridsim` command: one click group; each sub-command lives in its own module.

Sub-commands are imported when they are used (`LazyGroup`), so that one whose dependencies are missing
does not take the others down: a GPU host with torch but without simpy and pydantic can still run
`hybridsim calibrate`, and `hybridsim --help` lists every command (naming what a missing one lacks).
User errors (`HybridsimError`) become one line on stderr and exit code 2; bugs keep their traceback.
"""

from __future__ import annotations

import importlib

import click

from hybridsim.core.errors import HybridsimError
from hybridsim.core.program import run_main

SUB_COMMANDS: dict[str, str] = {
    "run": "hybridsim.simulator.cli.run_cmd:run",
    "compare": "hybridsim.simulator.cli.run_cmd:compare",
    "profiles": "hybridsim.simulator.cli.profiles_cmd:profiles",
    "workload": "hybridsim.simulator.cli.workload_cmd:workload",
    # calibration/cli.py imports nothing heavy at module level; torch is imported when the command runs.
    "calibrate": "hybridsim.calibration.cli:calibrate",
}
"""Sub-command name -> 'module:attribute' of its click command."""


class LazyGroup(click.Group):
    """A click group that imports each sub-command from `SUB_COMMANDS` the first time it is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(SUB_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in SUB_COMMANDS:
            module_name, attribute = SUB_COMMANDS[cmd_name].split(":")
            try:
                module = importlib.import_module(module_name)
            except ImportError as error:
                raise HybridsimError(
                    f"{cmd_name}: unavailable here ({error}); install hybridsim with its "
                    "dependencies (pip install -e .)"
                ) from None
            self.add_command(getattr(module, attribute), cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Every command with its one-line help; one that cannot be imported says why instead."""
        rows: list[tuple[str, str]] = []
        limit = formatter.width - 6 - max(len(name) for name in SUB_COMMANDS)
        for name in self.list_commands(ctx):
            try:
                command = self.get_command(ctx, name)
            except HybridsimError as error:
                rows.append((name, str(error).removeprefix(f"{name}: ")))
                continue
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hybridsim")
def cli() -> None:
    """Energy and latency of LLM inference on heterogeneous clusters."""


def main() -> None:
    run_main(cli, "hybridsim")
