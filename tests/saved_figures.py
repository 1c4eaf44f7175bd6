"""Figures a report module saves, kept for a test to inspect (the module closes them once written)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import pytest


def saved_figures(monkeypatch: pytest.MonkeyPatch, module: ModuleType) -> list[Any]:
    """Every figure `module._save` writes from now on, in order (still written as before)."""
    saved: list[Any] = []
    original = module._save

    def keep(figure: Any, out_dir: Path, name: str) -> str:
        saved.append(figure)
        return original(figure, out_dir, name)

    monkeypatch.setattr(module, "_save", keep)
    return saved
