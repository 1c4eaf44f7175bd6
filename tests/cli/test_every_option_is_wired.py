"""Every option of every `hybridsim` command is shown to take effect by a named test, or is allowed by name.

The click command tree is walked (every sub-command, imported as `hybridsim --help` would), and each option
must appear in OPTION_TESTS, naming a test that gives the option and checks what it changed, or in ALLOWED,
with the reason it needs none. An option added later without either fails here: wire it, test it, list it.
Options that would be ignored in some context are refused there (tests/cli/test_options_in_context.py,
tests/calibration/test_calibrate_options_take_effect.py).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import click

from hybridsim.cli import cli

TESTS = Path(__file__).resolve().parents[1]
CALIBRATE_EFFECTS = (
    "calibration/test_calibrate_options_take_effect.py::test_each_option_changes_what_the_run_is_given"
)
IN_CONTEXT = "cli/test_options_in_context.py"
IMPORT_FOLDERS = "cli/test_import_folders.py::test_an_import_never_costs_the_user_a_file"
PLAN_BACKEND = f"{IN_CONTEXT}::test_a_plans_execution_options_reach_its_backend"
PLOT_OVERWRITE = f"{IN_CONTEXT}::test_overwrite_replaces_the_plot_file"
RUN_OUT = "cli/test_output_folders.py::test_overwrite_writes_beside_user_files_and_never_over_them"

OPTION_TESTS: dict[str, str] = {
    "run --out": RUN_OUT,
    "run --seed": RUN_OUT,  # the second run's summary says seed 4
    "run --overwrite": RUN_OUT,
    "run --no-overwrite": f"{IN_CONTEXT}::test_no_overwrite_keeps_a_previous_run",
    "run --backend": PLAN_BACKEND,
    "run --address": PLAN_BACKEND,
    "run --workers": PLAN_BACKEND,
    "compare --out": "cli/test_output_folders.py::test_compare_out_follows_the_same_rule",
    "compare --overwrite": f"{IN_CONTEXT}::test_compare_overwrite_writes_beside_the_users_files",
    "profiles show --plot": (
        "profiles/test_registry_and_cli.py::test_profiles_show_prints_points_and_plots_side_by_side"
    ),
    "profiles show --overwrite": PLOT_OVERWRITE,
    "profiles import-wilkins2024 --out": IMPORT_FOLDERS,
    "profiles import-wilkins2024 --overwrite": IMPORT_FOLDERS,
    "profiles import-splitwise2024 --out": IMPORT_FOLDERS,
    "profiles import-splitwise2024 --overwrite": IMPORT_FOLDERS,
    "workload show --plot": "workload/test_alpaca_import.py::test_workload_cli_show_plot_and_import",
    "workload show --overwrite": PLOT_OVERWRITE,
    "workload import-alpaca --out": IMPORT_FOLDERS,
    "workload import-alpaca --overwrite": IMPORT_FOLDERS,
}
"""`command --option` -> `file::test` (under tests/) that gives the option and checks its effect. Every
`calibrate` option is tested by CALIBRATE_EFFECTS, whose table must have a row for it."""

ALLOWED: dict[str, str] = {
    "--version": "click's own: prints the installed package's version and exits; nothing to wire",
}
"""`command --option` -> why no test of its effect is needed."""


def every_option(command: click.Command = cli, path: str = "") -> Iterator[tuple[str, click.Option]]:
    """(`sub-command --option`, the option) for every option in the tree below `command`."""
    context = click.Context(command, info_name=path or "hybridsim")
    for parameter in command.params:
        if isinstance(parameter, click.Option):
            yield f"{path} {'/'.join([*parameter.opts, *parameter.secondary_opts])}".strip(), parameter
    if isinstance(command, click.Group):
        for name in command.list_commands(context):
            sub = command.get_command(context, name)
            assert sub is not None, name
            yield from every_option(sub, f"{path} {name}".strip())


def where_tested() -> dict[str, str]:
    """OPTION_TESTS, and the calibrate effect table for every option `calibrate` has."""
    calibrate = {key: CALIBRATE_EFFECTS for key, _ in every_option() if key.startswith("calibrate ")}
    return {**OPTION_TESTS, **calibrate}


def test_every_option_is_tested_for_its_effect_or_allowed_with_a_reason() -> None:
    options = dict(every_option())
    assert len(options) > 50 and "calibrate --idle-window-s" in options  # the walk reaches every command
    unlisted = sorted(set(options) - set(where_tested()) - set(ALLOWED))
    assert not unlisted, f"options with neither a test of their effect nor a reason: {unlisted}"
    stale = sorted((set(OPTION_TESTS) | set(ALLOWED)) - set(options))
    assert not stale, f"listed options that no command has any more: {stale}"
    assert not set(OPTION_TESTS) & set(ALLOWED)
    for reason in ALLOWED.values():
        assert len(reason) > 20


def test_each_named_test_exists_and_gives_its_option() -> None:
    for key, where in where_tested().items():
        file, name = where.split("::")
        source = (TESTS / file).read_text(encoding="utf-8")
        tests = {
            node.name
            for node in ast.parse(source).body
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
        }
        assert name in tests, f"{key}: {where} is not a test"
        option = key.split()[-1]
        if where == CALIBRATE_EFFECTS:
            assert f'"{option}": (' in source, f"{key}: no row in {file}'s CALIBRATE_EFFECTS"
        else:
            assert f'"{option}"' in source, f"{key}: {file} never gives {option}"
