"""`profiles show --plot`: one legend entry per profile, and the legend over no panel (inside, it covered
the lines that end in a corner: the A100's 4096-token output sweep, the batch-64 decode iterations)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hybridsim.simulator.profiles.registry import load_profile
from hybridsim.simulator.report import profile_plots, serving_profile_plots
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def _drawn(module: Any, monkeypatch: pytest.MonkeyPatch, plot: Any, names: list[str], path: Path) -> Figure:
    made: list[Figure] = []

    class Kept(Figure):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(module, "Figure", Kept)
    plot([load_profile(name) for name in names], path)
    assert path.read_bytes()[:4] == b"\x89PNG"
    (figure,) = made
    FigureCanvasAgg(figure).draw()
    return figure


def _legend_covers_no_panel(figure: Figure, entries: int) -> None:
    renderer = FigureCanvasAgg(figure).get_renderer()
    legends = figure.legends + [axis.get_legend() for axis in figure.axes if axis.get_legend()]
    assert len(legends) == 1 and len(legends[0].get_texts()) == entries
    box = legends[0].get_window_extent(renderer)
    assert not any(box.overlaps(axis.get_window_extent(renderer)) for axis in figure.axes)


def test_request_level_figure_keeps_its_legend_off_the_panels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = ["h100/llama2-7b-bf16-nokv", "h100/llama2-7b-bf16-kv", "swing-a100/llama2-7b"]
    figure = _drawn(profile_plots, monkeypatch, profile_plots.plot_sweeps, names, tmp_path / "x.png")
    _legend_covers_no_panel(figure, len(names))
    labels = [text.get_text() for text in figure.legends[0].get_texts()]
    assert "output sweep at 38 input tokens" in labels[2]  # the A100's fixed length, not the H100s' 32


def test_serving_figure_keeps_its_legend_off_the_panels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = ["splitwise-a100/llama2-70b-tp8", "splitwise-h100/llama2-70b-tp8"]
    module = serving_profile_plots
    figure = _drawn(module, monkeypatch, module.plot_serving, names, tmp_path / "s.png")
    _legend_covers_no_panel(figure, len(names))
    label = figure.legends[0].get_texts()[0].get_text()
    assert "576 context tokens per request" in label and "512 prompt tokens per request" in label
