"""Energy and runtime of a threshold sweep against the threshold (the paper's Figs. 4-5).

The hybrid is a curve over T; the two homogeneous clusters ("everything on A", "everything on B") are
horizontal lines, so the reader sees at once where the hybrid dips below both and by how much.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .figures import PDF_METADATA, plt

RULE_LABELS = {"input": "input tokens m <= T", "output": "output tokens n <= T", "product": "m * n <= T^2"}


def _save(figure: plt.Figure, out_dir: Path, stem: str) -> list[Path]:
    paths = []
    for suffix, metadata in ((".png", None), (".pdf", PDF_METADATA)):
        path = Path(out_dir) / f"{stem}{suffix}"
        figure.savefig(path, dpi=150, bbox_inches="tight", metadata=metadata)
        paths.append(path)
    plt.close(figure)
    return paths


def _one_plot(
    thresholds: np.ndarray,
    hybrid: np.ndarray,
    baselines: dict[str, float],
    best: int,
    ylabel: str,
    title: str,
    rule: str,
) -> plt.Figure:
    figure, axis = plt.subplots(figsize=(8, 3.6))
    colours = ("tab:red", "tab:green")
    for (label, value), colour in zip(baselines.items(), colours, strict=True):
        axis.axhline(value, color=colour, linestyle="--", linewidth=1.2, label=f"{label} only")
    marker = "o" if thresholds.size <= 64 else None
    axis.plot(
        thresholds, hybrid, color="tab:blue", marker=marker, markersize=5, linewidth=1.5, label="hybrid"
    )
    axis.plot(
        [thresholds[best]],
        [hybrid[best]],
        marker="*",
        color="black",
        markersize=11,
        linestyle="none",
        label=f"least energy: T = {thresholds[best]:g}",
    )
    if thresholds.min() > 0 and thresholds.max() / thresholds.min() >= 8:
        axis.set_xscale("log", base=2)
    first, second = baselines
    axis.set_xlabel(f"threshold T (to {first} when {RULE_LABELS[rule]}, else to {second})")
    axis.set_ylabel(ylabel)
    axis.set_title(title, fontsize=10)
    axis.grid(alpha=0.3, which="both", linewidth=0.4)
    axis.legend(frameon=False, fontsize=8)
    return figure


def plot_threshold_sweep(
    frame: pd.DataFrame,
    baselines_kwh: dict[str, float],
    baselines_runtime_h: dict[str, float],
    rule: str,
    title: str,
    out_dir: Path,
    best: int,
) -> list[Path]:
    """`energy-vs-threshold` and `runtime-vs-threshold`, each as PNG and PDF; returns the paths.

    `best` is the row of the least-energy threshold (`SweepResult.best_index`), marked on both plots.
    """
    thresholds = frame["threshold"].to_numpy()
    energy_kwh = frame["energy_kwh"].to_numpy()
    paths = _save(
        _one_plot(thresholds, energy_kwh, baselines_kwh, best, "total energy (kWh)", title, rule),
        out_dir,
        "energy-vs-threshold",
    )
    runtime_h = frame["runtime_s"].to_numpy() / 3600.0
    paths += _save(
        _one_plot(
            thresholds, runtime_h, baselines_runtime_h, best, "sum of per-request runtimes (h)", title, rule
        ),
        out_dir,
        "runtime-vs-threshold",
    )
    return paths
