"""`hybridsim workload ...`: list, inspect and re-import token-length workloads."""

from __future__ import annotations

from pathlib import Path

import click

from hybridsim.core.errors import HybridsimError
from hybridsim.core.limits import MAX_REQUESTS
from hybridsim.core.output_guard import check_output_file

from ..workload.datasets import BUILTIN_WORKLOADS, DATA_DIR, load_builtin, read_histogram_csv, summarise


@click.group()
def workload() -> None:
    """Token-length workloads (Alpaca-shaped built-ins or your own data)."""


@workload.command("list")
def list_workloads() -> None:
    """The built-in workloads and what each one is."""
    for entry in BUILTIN_WORKLOADS.values():
        click.echo(f"{entry.name:<20} {entry.label}")


@workload.command()
@click.argument("name")
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Write input/output histograms (the paper's Fig. 3) here; .png or .pdf.",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing --plot file.")
def show(name: str, plot_path: Path | None, overwrite: bool) -> None:
    """Summary statistics of a built-in workload NAME, or of a CSV of token lengths."""
    if overwrite and plot_path is None:
        raise HybridsimError("--overwrite: applies to a --plot file; without --plot nothing is written")
    if plot_path is not None:
        if plot_path.suffix.lower() not in (".png", ".pdf"):
            raise HybridsimError(f"--plot {plot_path}: the plot must be a .png or .pdf file")
        check_output_file(plot_path, "--plot", overwrite)
    if name in BUILTIN_WORKLOADS:
        table = load_builtin(name)
    elif name.endswith(".csv"):
        table = read_histogram_csv(Path(name), Path(name).stem, f"CSV {name}")
    else:
        raise HybridsimError(
            f"unknown workload {name!r} (built-ins: {', '.join(BUILTIN_WORKLOADS)}; "
            "or a .csv with input_tokens,output_tokens[,count])"
        )
    if table.total > MAX_REQUESTS:  # the statistics below are taken over every record, one by one
        raise HybridsimError(
            f"{name}: {table.total:,} records; `workload show` summarises at most {MAX_REQUESTS:,}"
        )
    lengths = table.expand()
    statistics = summarise(lengths)  # an empty table fails here, before anything is printed
    click.echo(f"{name}: {table.provenance}")
    click.echo(
        f"{'field':<8} {'n':>8} {'mean':>8} {'median':>7} {'p90':>7} {'p99':>7} "
        f"{'min':>5} {'max':>6} {'<=32':>6}"
    )
    for axis, stats in statistics.items():
        click.echo(
            f"{axis.split('_')[0]:<8} {stats['count']:>8,} {stats['mean']:>8.2f} {stats['median']:>7g} "
            f"{stats['p90']:>7.1f} {stats['p99']:>7.1f} {stats['min']:>5} {stats['max']:>6} "
            f"{stats['frac_le_32']:>6.3f}"
        )
    if plot_path is not None:
        from ..report.workload_plots import plot_length_histograms

        click.echo(f"plot: {plot_length_histograms(lengths, plot_path)}")


@workload.command("import-alpaca")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=DATA_DIR,
    show_default="the built-in workload directory",
    help="Where to write the derived tables and PROVENANCE.md.",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Write into an --out folder that holds other files (only hybridsim's own files are replaced).",
)
def import_alpaca_cmd(directory: Path, out_dir: Path, overwrite: bool) -> None:
    """Regenerate the built-in Alpaca tables from DIRECTORY (a copy of shared/data/alpaca)."""
    from ..workload.alpaca_import import import_alpaca

    for path in import_alpaca(directory, out_dir, overwrite=overwrite):
        click.echo(f"wrote {path}")
