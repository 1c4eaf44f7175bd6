"""What a `calibrate` command line asks for, checked: token lists, caps, the `--quick` defaults.

An operator types token counts as comma-separated lists and may leave most settings to defaults (or to the
`--quick` smoke test); these helpers turn that into the protocol's tuples and numbers, or one error line
naming the option. Shared by the request sweep (`cli.py`) and `calibrate --serving` (`cli_serving.py`).
"""

from __future__ import annotations

import importlib.util
from typing import Any

import click

from hybridsim.core.cli_types import TOKENS_MAX
from hybridsim.core.errors import HybridsimError

QUICK: dict[str, Any] = {
    "input_tokens": (8, 16),
    "output_tokens": (8, 16),
    "fixed_input": 16,
    "fixed_output": 16,
    "min_trials": 2,
    "max_trials": 3,
    "warmup": 1,
}
"""The `--quick` smoke test: three settings, a few trials each."""


class OneLineErrors(click.Command):
    """Usage errors (an unknown option, a value of the wrong type) as one
    `HybridsimError` line, like the rest.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as error:
            raise HybridsimError(
                f"calibrate: {error.format_message()} (see hybridsim calibrate --help)"
            ) from None


def require_calibrate_extra() -> None:
    """torch and transformers are an optional extra: without them, say how to get them, in one line."""
    missing = [name for name in ("torch", "transformers") if importlib.util.find_spec(name) is None]
    if missing:
        raise HybridsimError(
            f"calibrate needs {' and '.join(missing)}: pip install 'hybridsim[calibrate]' "
            "with the torch build for your accelerator (README: Calibrating your own hardware)"
        )


def token_list(option: str, text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        values = tuple(sorted({int(part) for part in text.replace(" ", "").split(",") if part}))
    except ValueError:
        raise HybridsimError(
            f"{option}: expected comma-separated token counts like 8,16,32, got {text!r}"
        ) from None
    if not values or values[0] < 1:
        raise HybridsimError(f"{option}: token counts must be positive integers, got {text!r}")
    if values[-1] > TOKENS_MAX:
        raise HybridsimError(f"{option}: {values[-1]} tokens is beyond the limit of {TOKENS_MAX:,}")
    return values


def capped(option: str, cap: int | None, values: tuple[int, ...]) -> tuple[int, ...]:
    """`values` up to `cap` (--max-input, --max-output); an error when none is left."""
    kept = tuple(v for v in values if cap is None or v <= cap)
    if not kept:
        raise HybridsimError(f"{option} {cap}: leaves no token counts (the smallest is {min(values)})")
    return kept


def pick(explicit: int | None, quick: int | None, default: int) -> int:
    return explicit if explicit is not None else quick if quick is not None else default
