"""The simulator's sub-commands of `hybridsim` (`run`, `compare`, `profiles`, `workload`), one module each."""
