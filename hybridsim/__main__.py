"""`python -m hybridsim` is the `hybridsim` command."""

from hybridsim.cli import main

main()
