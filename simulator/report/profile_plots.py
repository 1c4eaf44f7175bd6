"""The paper's Figures 1-2 for any profiles: runtime, throughput and energy per token against input tokens
(top row, the input sweep) and against output tokens (bottom row, the output sweep), systems side by side.

Throughput and energy per token count input + output tokens with the profile's `input_tokens` (actual
lengths where known), not the source's `Total Number of Tokens`, which on M1 counts the nominal bin: so
the systems compare on equal terms.
"""

from __future__ import annotations

import io
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from hybridsim.core.atomic import write_bytes_atomic
from hybridsim.core.errors import HybridsimError
from hybridsim.core.output_guard import check_output_file
from hybridsim.core.profile_model import Profile

PLOT_SUFFIXES = (".png", ".pdf")
PANELS = (
    ("runtime_s", "runtime per request (s)"),
    ("throughput", "throughput (input + output tokens/s)"),
    ("energy_per_token", "energy per token (J, CPU + GPU)"),
)


def _describe(profile: Profile) -> str:
    """The legend entry: the name and what changes the numbers (KV cache, batch, estimate)."""
    meta = profile.metadata
    kv = "KV cache ?" if meta.kv_cache is None else ("KV cache" if meta.kv_cache else "no KV cache")
    estimated = ", ESTIMATED" if meta.estimated else ""
    return f"{profile.name} [{kv}, batch {meta.batch_size}{estimated}]"


def check_plot_path(path: Path, overwrite: bool) -> None:
    """Refuse a --plot file before anything is computed: wrong suffix, or a place no output may take."""
    if Path(path).suffix.lower() not in PLOT_SUFFIXES:
        raise HybridsimError(f"--plot {path}: the plot must be a {' or '.join(PLOT_SUFFIXES)} file")
    check_output_file(Path(path), "--plot", overwrite)


def plot_sweeps(profiles: list[Profile], path: Path) -> None:
    """Write a 2 x 3 figure (sweeps x metrics) with one line per profile to `path` (.png or .pdf).

    One colour per profile in every panel, and one legend below the panels (inside, it covered the lines
    that end in a corner), saying at which fixed length each profile's sweeps were measured."""
    path = Path(path)
    if path.suffix.lower() not in PLOT_SUFFIXES:
        raise HybridsimError(f"--plot {path}: the plot must be a {' or '.join(PLOT_SUFFIXES)} file")
    figure = Figure(figsize=(13, 7.5 + 0.2 * len(profiles)), layout="constrained")
    axes = figure.subplots(2, 3)
    fixed: dict[int, list[str]] = {index: [] for index in range(len(profiles))}
    for row, (sweep, axis_column, label) in enumerate(
        (("input", "input_tokens", "input tokens"), ("output", "output_tokens", "output tokens"))
    ):
        other = "output" if sweep == "input" else "input"
        for index, profile in enumerate(profiles):
            points = profile.sweep(sweep)
            if points.empty:
                continue
            tokens = points["input_tokens"] + points["output_tokens"]
            series = {
                "runtime_s": points["runtime_s_mean"],
                "throughput": tokens / points["runtime_s_mean"],
                "energy_per_token": points["energy_j_mean"] / tokens,
            }
            fixed[index].append(f"{sweep} sweep at {points[f'{other}_tokens'].iloc[0]} {other} tokens")
            for column, (key, _) in enumerate(PANELS):
                axes[row, column].plot(
                    points[axis_column], series[key], marker="o", markersize=3, color=f"C{index % 10}"
                )
        for column, (_, title) in enumerate(PANELS):
            axis = axes[row, column]
            axis.set_xscale("log", base=2)
            axis.set_yscale("log")
            axis.set_xlabel(label)
            axis.set_ylabel(title)
            axis.grid(True, which="both", alpha=0.3)
    handles = [
        Line2D([], [], marker="o", markersize=3, color=f"C{index % 10}") for index in range(len(profiles))
    ]
    labels = [
        f"{_describe(profile)} ({', '.join(fixed[index]) or 'no sweep'})"
        for index, profile in enumerate(profiles)
    ]
    figure.legend(handles, labels, loc="outside lower center", fontsize=8, frameon=False)
    figure.suptitle("Cost per request as measured; energy scopes differ per system (see `profiles show`)")
    buffer = io.BytesIO()
    figure.savefig(buffer, format=path.suffix.lower().lstrip("."), dpi=120)
    write_bytes_atomic(path, buffer.getvalue())
