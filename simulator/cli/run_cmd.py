"""`hybridsim run SCENARIO.yaml` and `hybridsim compare DIR...`."""

from __future__ import annotations

from pathlib import Path

import click

from hybridsim.core.cli_types import bounded_int
from hybridsim.core.errors import HybridsimError

from ..scenario.loader import run_scenario


@click.command()
@click.argument("scenario", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Output directory (default: results/<scenario file name>).",
)
@click.option("--seed", type=bounded_int(0), default=None, help="Override the scenario's seed (>= 0).")
@click.option("--no-overwrite", is_flag=True, help="Refuse to replace a previous run in --out.")
@click.option(
    "--overwrite",
    is_flag=True,
    help="Write into an --out folder that holds other files (only hybridsim's own files are replaced).",
)
@click.option(
    "--backend",
    type=click.Choice(["local", "ray"]),
    default=None,
    help="Plans only: run the candidates in local worker processes (default) or on Ray.",
)
@click.option("--address", default=None, help="Plans only: an existing Ray cluster's host:port.")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="Plans only: parallel runs.")
def run(
    scenario: Path,
    out_dir: Path | None,
    seed: int | None,
    no_overwrite: bool,
    overwrite: bool,
    backend: str | None,
    address: str | None,
    workers: int | None,
) -> None:
    """Run a scenario YAML and write summary.json, tables and plots into --out, atomically."""
    if no_overwrite and overwrite:
        # staged_directory lets --overwrite replace a previous run, so --no-overwrite would go unread
        raise HybridsimError("--no-overwrite: contradicts --overwrite (which replaces hybridsim's own files)")
    out_dir = Path("results") / scenario.stem if out_dir is None else out_dir
    execution = {
        name: value
        for name, value in (("backend", backend), ("address", address), ("workers", workers))
        if value is not None
    }
    summary = run_scenario(
        scenario, out_dir, replace=not no_overwrite, overwrite=overwrite, seed=seed, execution=execution
    )
    click.echo(summary.get("headline", f"wrote {out_dir}"))
    click.echo(f"results: {out_dir}/summary.json")


@click.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Write the comparison table and plots here as well as printing the table.",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Write into an --out folder that holds other files (only hybridsim's own files are replaced).",
)
def compare(run_dirs: tuple[Path, ...], out_dir: Path | None, overwrite: bool) -> None:
    """Tabulate and plot finished runs side by side."""
    from ..report.compare import compare_runs

    if overwrite and out_dir is None:
        raise HybridsimError("--overwrite: applies to an --out folder; without --out nothing is written")

    table = compare_runs(list(run_dirs), out_dir, overwrite=overwrite)
    click.echo(table)
