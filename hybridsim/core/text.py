"""Numbers as people read them in headlines and plot labels: one rule, so that figures printed side by side
carry the same digits."""

from __future__ import annotations


def significant(value: float, digits: int = 4) -> str:
    """`value` to `digits` significant digits with trailing zeros kept (4.590 beside 4.603, not 4.59)."""
    text = f"{value:#.{digits}g}"
    return text if "e" in text else text.rstrip(".")
