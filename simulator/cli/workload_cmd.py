"""`hybridsim workload ...`: inspect token-length distributions."""

import click


@click.group()
def workload() -> None:
    """Token-length workloads (Alpaca-shaped built-ins or your own data)."""
