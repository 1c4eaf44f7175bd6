"""`hybridsim profiles ...`: list, show and import profiles."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import pandas as pd

from hybridsim.core.errors import HybridsimError
from hybridsim.core.output_guard import check_output_file
from hybridsim.core.profile_model import Profile

from ..profiles.registry import BUILTIN_DIR, list_builtin, load_profile

SHOW_COLUMNS = {
    "sweep": "sweep",
    "input_tokens": "input",
    "input_tokens_nominal": "bin",
    "output_tokens": "output",
    "n_trials": "n",
    "runtime_s_mean": "runtime_s",
    "energy_j_mean": "energy_j",
    "energy_j_std": "sd_j",
    "cpu_energy_j_mean": "cpu_j",
    "gpu_energy_j_mean": "gpu_j",
    "status": "status",
}


def _builtin_out(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The importers' `--out`: a folder, by default the built-in profile directory they regenerate."""
    return click.option(
        "--out",
        "out_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=BUILTIN_DIR,
        show_default="the built-in profile directory",
        help=help_text,
    )


_import_overwrite = click.option(
    "--overwrite",
    is_flag=True,
    help="Write into an --out folder that holds other files (only hybridsim's own files are replaced).",
)
"""The importers' `--overwrite` (the built-in folder they regenerate needs none)."""


@click.group()
def profiles() -> None:
    """Built-in and user profiles: measured costs of one model on one system."""


@profiles.command("list")
def list_command() -> None:
    """A table of the built-in profiles; `serving` says which carry per-pass tables for batching engines."""
    rows = [_summary(load_profile(name)) for name in list_builtin()]
    click.echo(pd.DataFrame(rows).to_string(index=False))


@profiles.command("show")
@click.argument("names", nargs=-1, required=True)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the paper's Figs 1-2 for these profiles (.png or .pdf); for profiles with serving "
    "tables, iteration time and energy per token against batch size (to PLOT, or PLOT-serving when both).",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing --plot file.")
def show_command(names: tuple[str, ...], plot_path: Path | None, overwrite: bool) -> None:
    """Metadata, measured points and serving tables of each NAME (a built-in name or a profile directory)."""
    if overwrite and plot_path is None:
        raise HybridsimError("--overwrite: applies to a --plot file; without --plot nothing is written")
    if plot_path is not None:
        from ..report.profile_plots import check_plot_path

        check_plot_path(plot_path, overwrite)
    loaded = [load_profile(name) for name in names]
    for profile in loaded:
        click.echo(_describe(profile))
        if profile.serving is not None:
            from .serving_show import describe_serving

            click.echo(describe_serving(profile.serving))
    if plot_path is not None:
        from ..report.profile_plots import PLOT_SUFFIXES, plot_sweeps
        from ..report.serving_profile_plots import plot_serving

        if plot_path.suffix.lower() not in PLOT_SUFFIXES:
            raise HybridsimError(f"--plot {plot_path}: the plot must be a {' or '.join(PLOT_SUFFIXES)} file")
        per_request = [profile for profile in loaded if not profile.points.empty]
        serving = [profile for profile in loaded if profile.serving is not None]
        serving_path = (
            plot_path.with_name(f"{plot_path.stem}-serving{plot_path.suffix}") if per_request else plot_path
        )
        if serving and per_request:
            check_output_file(serving_path, "--plot", overwrite)  # before either plot is written
        if per_request:
            plot_sweeps(per_request, plot_path)
            click.echo(f"wrote {plot_path}")
        if serving:
            plot_serving(serving, serving_path)
            click.echo(f"wrote {serving_path}")


@profiles.command("import-wilkins2024")
@click.argument("raw_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@_builtin_out("Where to write the profiles.")
@_import_overwrite
def import_command(raw_dir: Path, out_dir: Path, overwrite: bool) -> None:
    """Regenerate the built-in profiles from the paper's raw data (../shared/reference/wilkins2024/raw)."""
    from ..profiles.wilkins2024 import import_wilkins2024

    for name in import_wilkins2024(raw_dir, out_dir, overwrite=overwrite):
        click.echo(f"wrote {out_dir / name}")


@profiles.command("import-splitwise2024")
@click.argument("raw_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@_builtin_out("Where to write the serving profiles and their PROVENANCE.md.")
@_import_overwrite
def import_splitwise_command(raw_dir: Path, out_dir: Path, overwrite: bool) -> None:
    """Regenerate the built-in serving profiles from Splitwise's measurements
    (../shared/reference/splitwise2024/raw)."""
    from ..profiles.splitwise2024 import import_splitwise2024

    for name in import_splitwise2024(raw_dir, out_dir, overwrite=overwrite):
        click.echo(f"wrote {out_dir / name}")


def _summary(profile: Profile) -> dict[str, object]:
    ok = profile.points[
        profile.points.get("status", pd.Series("ok", index=profile.points.index)).fillna("ok") == "ok"
    ]
    return {
        "name": profile.name,
        "system": _short(profile.metadata.system),
        "model": profile.metadata.model,
        "meter": _short(profile.metadata.meter),
        "points": len(ok),
        "input": f"{ok['input_tokens'].min():g}-{ok['input_tokens'].max():g}" if len(ok) else "-",
        "output": f"{ok['output_tokens'].min():g}-{ok['output_tokens'].max():g}" if len(ok) else "-",
        "serving": _serving_summary(profile),
        "estimated": "yes" if profile.metadata.estimated else "no",
    }


def _short(text: str, width: int = 28) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _serving_summary(profile: Profile) -> str:
    """'no', or the batch sizes and GPUs per replica of the serving tables ('b1-64/tp8')."""
    if profile.serving is None:
        return "no"
    batches = pd.concat([profile.serving.prefill["batch_size"], profile.serving.decode["batch_size"]])
    return f"b{batches.min()}-{batches.max()}/tp{profile.serving.tensor_parallel}"


def _describe(profile: Profile) -> str:
    meta = profile.metadata
    lines = [
        f"== {profile.name}: {meta.model} on {meta.system}",
        f"device:       {meta.device} ({meta.dtype})",
        f"meter:        {meta.meter}{' (ESTIMATED, no energy counter read)' if meta.estimated else ''}",
        f"energy scope: {meta.energy_scope}",
        f"idle power:   {_idle(meta.idle_power_w, meta.idle_power_source)}",
        f"provenance:   {meta.provenance} ({meta.date})",
    ]
    lines += [f"note:         {note}" for note in meta.notes]
    if profile.paper_fit is not None:
        fit = profile.paper_fit
        lines.append(
            f"paper fit:    E = {fit.energy_coefficients[0]:.6g}*m + {fit.energy_coefficients[1]:.6g}*n "
            f"+ {fit.energy_coefficients[2]:.6g}*m*n J; R = {fit.runtime_coefficients[0]:.6g}*m + "
            f"{fit.runtime_coefficients[1]:.6g}*n + {fit.runtime_coefficients[2]:.6g}*m*n s "
            f"({fit.energy_scope})"
        )
    if profile.points.empty:
        lines.append("points:       none (serving-only: per-pass tables below, no per-request costs)")
    else:
        columns = [column for column in SHOW_COLUMNS if column in profile.points.columns]
        table = profile.points[columns].rename(columns=SHOW_COLUMNS)
        lines.append(table.to_string(index=False, float_format=lambda value: f"{value:.4g}"))
    return "\n".join(lines) + "\n"


def _idle(watts: float | None, source: str) -> str:
    return f"none in this profile: {source}" if watts is None else f"{watts:g} W ({source})"
