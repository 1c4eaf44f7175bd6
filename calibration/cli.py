"""`hybridsim calibrate`: measure this machine and write a profile."""

import click


@click.command()
def calibrate() -> None:
    """Measure runtime and energy of an LLM at exact token counts and write a profile."""
    raise click.ClickException("not implemented yet")
