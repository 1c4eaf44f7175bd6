"""The simulator: profiles priced as cost models, workloads, arrivals, routers, node pools, metrics, reports.

Installed as `hybridsim.simulator` (pyproject.toml maps this folder into the `hybridsim` namespace).
"""
