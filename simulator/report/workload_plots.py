"""Histograms of a workload's input and output lengths (the paper's Fig. 3).

Token lengths are heavy-tailed, so the bins are spaced evenly in log2 and the axis ticks sit on the powers
of two that the paper's profiles were measured at: a reader sees at once how much of the workload falls
below the threshold under discussion.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..workload.datasets import TokenLengths
from .figures import PDF_METADATA, plt


def plot_length_histograms(lengths: TokenLengths, path: Path) -> Path:
    """Input and output token histograms side by side, saved to `path` (format from the suffix)."""
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=False)
    for axis, (column, colour) in zip(
        axes, (("input_tokens", "tab:blue"), ("output_tokens", "tab:orange")), strict=True
    ):
        values = getattr(lengths, column)
        top = max(2.0, float(values.max()))
        bins = np.unique(np.round(np.logspace(0, np.log2(top) + 0.01, 50, base=2.0)))
        axis.hist(values, bins=bins, color=colour, edgecolor="white", linewidth=0.3)
        axis.set_xscale("log", base=2)
        axis.set_xlabel(f"{column.replace('_', ' ')} (Llama-2, incl. BOS)")
        axis.set_ylabel("requests")
        axis.axvline(
            np.median(values),
            color="black",
            linestyle="--",
            linewidth=1,
            label=f"median {np.median(values):g}, mean {values.mean():.1f}",
        )
        axis.legend(frameon=False, fontsize=8)
        axis.grid(alpha=0.3, which="both", linewidth=0.4)
    figure.suptitle(f"{lengths.name}: {len(lengths):,} requests", fontsize=10)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = PDF_METADATA if path.suffix.lower() == ".pdf" else None
    figure.savefig(path, dpi=150, metadata=metadata)
    plt.close(figure)
    return path
