"""`hybridsim profiles ...`: list, show and import profiles."""

import click


@click.group()
def profiles() -> None:
    """Built-in and user profiles: measured costs of one model on one system."""
