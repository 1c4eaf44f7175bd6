"""Pictures of a simulation run: what each policy costs in energy against what users wait.

Three figures an operator reads in this order:

* `energy_vs_p99.png`: one point per policy (a line through the sweep points, if any, its ends labelled
  with their values), total energy against p99 latency; the lower left corner is where a policy would want
  to be. Good policies tend to land on top of each other there, so when several do, a second panel zooms
  into that corner (linear axes) and names each point beside it;
* `sweep.png` (with a sweep): energy and p99 latency against the swept parameter, one line per policy;
  the knee in p99 is where a pool saturates, which the no-queue threshold analysis cannot show;
* `utilisation.png`: how busy each system was under each policy (per sweep point, if any).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hybridsim.core.text import significant

from .figures import PNG_METADATA, plt

UNITS = {
    "rate": "req/s",
    "count": "nodes",
    "idle_power_w": "W",
    "threshold": "tokens",
    "max_tokens": "tokens",
    "slo_s": "s",
    "warmup_s": "s",
    "duration_s": "s",
    "period_s": "s",
    "max_batch": "requests per batch",
}
"""Units of swept parameters, by the last part of their YAML path (others are shown as they are)."""
MARKERS = "osD^vP*Xh<>p"
"""One marker shape per policy, so that policies landing on the same point stay visible."""
CORNER_LATENCY = 3.0
CORNER_ENERGY = 1.10
"""A policy is in the best corner when its p99 is within 3x and its energy within 10% of the lowest ones."""


def _legend(axis: plt.Axes) -> None:
    """Beside the plot, not over the points."""
    axis.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)


def _save(figure: plt.Figure, out_dir: Path, name: str) -> str:
    figure.savefig(Path(out_dir) / name, dpi=120, bbox_inches="tight", metadata=PNG_METADATA)
    plt.close(figure)
    return name


def _axis_label(parameter: str) -> str:
    """`arrival.rate (req/s)`: the swept YAML path with its unit where it has a known one."""
    unit = UNITS.get(parameter.rsplit(".", 1)[-1])
    return f"{parameter} ({unit})" if unit else parameter


def _by_policy(runs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault(run["policy"], []).append(run)
    return groups


def _sweep_axis(values: list[Any]) -> tuple[np.ndarray, list[str] | None]:
    """Numbers as they are; anything else by position, with the values as tick labels."""
    if all(isinstance(value, (int, float)) and not isinstance(value, bool) for value in values):
        return np.array(values, dtype=float), None
    return np.arange(len(values), dtype=float), [str(value) for value in values]


def _corner(runs: list[dict[str, Any]]) -> list[int]:
    """Positions of the runs in the best corner (see CORNER_LATENCY), when zooming into it helps."""
    p99 = np.array([run["latency_s"]["p99"] for run in runs], dtype=float)
    kwh = np.array([run["energy"]["total_kwh"] for run in runs], dtype=float)
    inside = (p99 <= CORNER_LATENCY * p99.min()) & (kwh <= CORNER_ENERGY * kwh.min())
    return [int(k) for k in np.flatnonzero(inside)] if 3 <= inside.sum() < len(runs) else []


def _zoom(axis: plt.Axes, runs: list[dict[str, Any]], chosen: list[int], colours: list[str]) -> None:
    """The best corner on linear axes, each point named in a column beside it
    (lowest energy at the bottom).
    """
    order = sorted(chosen, key=lambda k: runs[k]["energy"]["total_kwh"])
    for rank, k in enumerate(order):
        p99, kwh = runs[k]["latency_s"]["p99"], runs[k]["energy"]["total_kwh"]
        axis.plot(
            [p99],
            [kwh],
            marker=MARKERS[k % len(MARKERS)],
            markersize=7,
            fillstyle="none",
            linewidth=0,
            color=colours[k],
        )
        axis.annotate(
            f"{runs[k]['policy']}  {significant(kwh, 4)} kWh, {significant(p99, 3)} s",
            (p99, kwh),
            xycoords="data",
            xytext=(1.04, (rank + 0.5) / len(order)),
            textcoords="axes fraction",
            fontsize=7,
            va="center",
            color=colours[k],
            arrowprops={"arrowstyle": "-", "color": colours[k], "linewidth": 0.5, "alpha": 0.6},
        )
    axis.margins(0.15)
    axis.set_xlabel("p99 latency (s)")
    axis.set_ylabel("total energy (kWh)")
    axis.set_title("the best corner (dashed box), zoomed", fontsize=9)
    axis.grid(True, alpha=0.3)


def energy_vs_p99(runs: list[dict[str, Any]], out_dir: Path, parameter: str | None = None) -> str:
    corner = _corner(runs) if parameter is None else []
    if corner:
        figure, (axis, zoomed) = plt.subplots(
            1, 2, figsize=(12, 4.8), gridspec_kw={"width_ratios": [1.0, 0.75], "wspace": 0.25}
        )
    else:
        figure, axis = plt.subplots(figsize=(7, 4.5))
    colours: list[str] = []
    for k, (label, mine) in enumerate(_by_policy(runs).items()):
        p99 = [run["latency_s"]["p99"] for run in mine]
        kwh = [run["energy"]["total_kwh"] for run in mine]
        line = axis.plot(
            p99,
            kwh,
            marker=MARKERS[k % len(MARKERS)],
            markersize=7,
            fillstyle="none",
            linewidth=1.2 if len(mine) > 1 else 0,
            label=label,
        )[0]
        colours.append(line.get_color())
        if len(mine) > 1:  # a sweep: say which end of the line is which value
            for end, offset in (
                (0, (5, 4)),
                (-1, (5, -10)),
            ):  # first above, last below: both legible if they meet
                axis.annotate(
                    str(mine[end]["sweep_value"]),
                    (p99[end], kwh[end]),
                    textcoords="offset points",
                    xytext=offset,
                    fontsize=7,
                    color=line.get_color(),
                )
    axis.set_xscale("log")
    axis.set_xlabel("p99 latency, arrival to last token (s, log)")
    axis.set_ylabel("total energy, active + idle (kWh)")
    axis.set_title(
        "Energy against tail latency per policy" + (f" (line ends: {parameter})" if parameter else "")
    )
    axis.grid(True, which="both", alpha=0.3)
    if corner:
        p99 = [runs[k]["latency_s"]["p99"] for k in corner]
        kwh = [runs[k]["energy"]["total_kwh"] for k in corner]
        axis.add_patch(
            plt.Rectangle(
                (min(p99) / 1.15, min(kwh) - 0.02 * (max(kwh) - min(kwh) + min(kwh) * 0.05)),
                max(p99) * 1.15 - min(p99) / 1.15,
                (max(kwh) - min(kwh)) * 1.04 + min(kwh) * 0.002,
                fill=False,
                linestyle="--",
                linewidth=0.8,
                edgecolor="grey",
            )
        )
        # Below the panel: policies fill the whole left panel's corners when they are many.
        axis.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), frameon=False, ncol=3)
        _zoom(zoomed, runs, corner, colours)
    else:
        _legend(axis)
    return _save(figure, out_dir, "energy_vs_p99.png")


def sweep_curves(runs: list[dict[str, Any]], parameter: str, values: list[Any], out_dir: Path) -> str:
    x, ticks = _sweep_axis(values)
    figure, (energy_axis, latency_axis) = plt.subplots(1, 2, figsize=(11, 4.2))
    for k, (label, mine) in enumerate(_by_policy(runs).items()):
        positions = [x[run["point"]] for run in mine]
        marker = MARKERS[k % len(MARKERS)]
        energy_axis.plot(positions, [run["energy"]["total_kwh"] for run in mine], marker=marker, label=label)
        latency_axis.plot(positions, [run["latency_s"]["p99"] for run in mine], marker=marker, label=label)
    energy_axis.set_ylabel("total energy (kWh)")
    latency_axis.set_ylabel("p99 latency (s, log)")
    latency_axis.set_yscale("log")
    for axis in (energy_axis, latency_axis):
        axis.set_xlabel(_axis_label(parameter))
        axis.grid(True, which="both", alpha=0.3)
        if ticks is not None:
            axis.set_xticks(x, ticks)
    _legend(latency_axis)
    figure.suptitle(f"Energy and tail latency against {parameter}")
    return _save(figure, out_dir, "sweep.png")


def utilisation(
    runs: list[dict[str, Any]],
    systems: list[str],
    parameter: str | None,
    values: list[Any] | None,
    out_dir: Path,
) -> str:
    if parameter is None:
        labels = list(_by_policy(runs))
        figure, axis = plt.subplots(figsize=(min(14.0, max(6.0, 0.9 * len(labels))), 4))
        width = 0.8 / max(len(systems), 1)
        for k, system in enumerate(systems):
            shares = [run["systems"][system]["utilisation"] for run in runs]
            axis.bar(np.arange(len(labels)) + k * width, shares, width, label=system)
        axis.set_xticks(
            np.arange(len(labels)) + width * (len(systems) - 1) / 2, labels, rotation=20, ha="right"
        )
        axis.set_ylabel("utilisation (busy time / node time)")
        axis.set_ylim(0, 1.05)
        _legend(axis)
        axis.set_title("How busy each system was")
        return _save(figure, out_dir, "utilisation.png")
    x, ticks = _sweep_axis(values or [])
    figure, axes = plt.subplots(1, len(systems), figsize=(5 * len(systems), 4), squeeze=False)
    for axis, system in zip(axes[0], systems, strict=True):
        for k, (label, mine) in enumerate(_by_policy(runs).items()):
            axis.plot(
                [x[run["point"]] for run in mine],
                [run["systems"][system]["utilisation"] for run in mine],
                marker=MARKERS[k % len(MARKERS)],
                label=label,
            )
        axis.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
        axis.set_title(f"{system} pool")
        axis.set_xlabel(_axis_label(parameter))
        axis.set_ylim(0, 1.05)
        axis.grid(True, alpha=0.3)
        if ticks is not None:
            axis.set_xticks(x, ticks)
    axes[0][0].set_ylabel("utilisation (busy time / node time)")
    figure.suptitle(f"How busy each system was, per policy, against {parameter}")
    _legend(axes[0][-1])
    return _save(figure, out_dir, "utilisation.png")


def write_plots(summary: dict[str, Any], out_dir: Path) -> list[str]:
    """Write the run's figures into `out_dir`; return their file names."""
    runs = summary["runs"]
    sweep = summary.get("sweep")
    systems = list(summary["cluster"])
    names = [energy_vs_p99(runs, out_dir, sweep["parameter"] if sweep else None)]
    if sweep is not None:
        names.append(sweep_curves(runs, sweep["parameter"], sweep["values"], out_dir))
    names.append(
        utilisation(
            runs, systems, sweep["parameter"] if sweep else None, sweep["values"] if sweep else None, out_dir
        )
    )
    return names
