"""The offline bound's linear program: built as sparse matrices over groups of requests, solved by HiGHS.

`offline_bound.py` says what the bound is and why it is one; it reduces the day's requests to groups
(same window, same deadline bucket, same costs) and hands them here. This module only writes the
relaxation down (variables, equalities, capacity and horizon rows) and solves it with
`scipy.optimize.linprog`; what it returns is the optimum's figures, not a schedule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.optimize import linprog

from hybridsim.core.errors import HybridsimError


@dataclass(frozen=True)
class LPOptimum:
    """The relaxation's optimum, in the LP's own terms."""

    energy_j: float
    """The optimum's objective: marginal energy plus every node's idle power over the horizon (J)."""
    horizon_s: float
    marginal_j: float
    always_on_w: float
    """Every node's idle power together, sum_s N_s P_s (W)."""
    placed: np.ndarray
    """How many requests the optimum places on each system (fractional)."""
    variables: int
    constraints: int


def solve_relaxation(
    nodes: np.ndarray,
    idle_w: np.ndarray,
    arrival: np.ndarray,
    runtime: np.ndarray,
    tail: np.ndarray,
    groups: int,
    starts: np.ndarray,
    due: np.ndarray,
    sizes: np.ndarray,
    g_energy: np.ndarray,
    g_work: np.ndarray,
    g_window: np.ndarray,
    g_bucket: np.ndarray,
    g_allowed: np.ndarray,
    horizon_floor: float,
    deadlines: bool,
) -> LPOptimum:
    """Build the LP over the groups and solve it with HiGHS.

    Per system: `nodes` (N_s), `idle_w` (P_s). Per group: `sizes`, `g_energy` (marginal J), `g_work` (s),
    `g_window`, `g_bucket`, `g_allowed`; the groups from `groups` on are the `tail` requests, one each.

    Variables: y[g, s] for each allowed (group, system) pair; A[j, k, s], the work on s of the requests of
    arrival window j and deadline bucket k (one bucket without deadlines); and H, last.
    """
    systems, n_groups, count = nodes.size, sizes.size, starts.size
    buckets = max(due.size, 1)
    pair_g, pair_s = np.nonzero(g_allowed)
    n_pairs = pair_g.size
    n_aggregates = count * buckets * systems
    h = n_pairs + n_aggregates
    aggregate = n_pairs + (g_window[pair_g] * buckets + g_bucket[pair_g]) * systems + pair_s
    always_on_w = float(nodes @ idle_w)
    cost = np.zeros(h + 1)
    cost[:n_pairs] = g_energy[pair_g, pair_s]
    cost[h] = always_on_w

    # Equalities: every group placed in full; every aggregate equal to its members' work.
    pairs = np.arange(n_pairs)
    eq_rows = np.concatenate([pair_g, n_groups + aggregate - n_pairs, n_groups + np.arange(n_aggregates)])
    eq_cols = np.concatenate([pairs, pairs, n_pairs + np.arange(n_aggregates)])
    eq_vals = np.concatenate([np.ones(n_pairs), g_work[pair_g, pair_s], -np.ones(n_aggregates)])
    a_eq = sparse.csr_matrix((eq_vals, (eq_rows, eq_cols)), shape=(n_groups + n_aggregates, h + 1))
    b_eq = np.concatenate([sizes, np.zeros(n_aggregates)])

    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    rhs: list[float] = []

    def add(columns: np.ndarray, values: np.ndarray, bound: float) -> None:
        rows.append(np.full(columns.size, len(rhs)))
        cols.append(columns)
        vals.append(values)
        rhs.append(bound)

    grid = np.arange(n_aggregates).reshape(count, buckets, systems) + n_pairs
    for s in range(systems):
        for j in range(count):
            # work arriving at or after T_j, on s: sum A[j' >= j, :, s] - N_s H <= -N_s T_j
            mine = grid[j:, :, s].reshape(-1)
            add(np.append(mine, h), np.append(np.ones(mine.size), -nodes[s]), -nodes[s] * starts[j])
        if deadlines:
            step = max(1, -(-count // buckets))
            for j in range(0, count, step):
                for k, end in enumerate(due):
                    if end > starts[j]:
                        # arriving at or after T_j and due by D_k: sum A[j' >= j, k' <= k, s] <= N_s (D_k -
                        # T_j)
                        mine = grid[j:, : k + 1, s].reshape(-1)
                        add(mine, np.ones(mine.size), nodes[s] * (end - starts[j]))
    pair_of = np.full((n_groups, systems), -1, dtype=np.int64)
    pair_of[pair_g, pair_s] = pairs
    for position, request in enumerate(tail):
        # a_r + sum_s x[r, s] R_s(r) - H <= 0
        chosen = pair_of[groups + position]
        chosen = chosen[chosen >= 0]
        add(np.append(chosen, h), np.append(runtime[request, pair_s[chosen]], -1.0), -arrival[request])
    a_ub = sparse.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(len(rhs), h + 1)
    )
    bounds = [(0.0, None)] * h + [(horizon_floor, None)]
    solution = linprog(
        cost, A_ub=a_ub, b_ub=np.array(rhs), A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs"
    )
    if solution.status == 2:
        raise HybridsimError("offline bound: no placement meets every deadline within the nodes' capacity")
    if not solution.success:
        raise RuntimeError(f"offline bound: the LP solver failed: {solution.message}")  # a bug, not input
    y = solution.x[:n_pairs]
    placed = np.zeros(systems)
    np.add.at(placed, pair_s, y)
    return LPOptimum(
        energy_j=float(solution.fun),
        horizon_s=float(solution.x[h]),
        marginal_j=float(cost[:n_pairs] @ y),
        always_on_w=always_on_w,
        placed=placed,
        variables=h + 1,
        constraints=len(rhs) + n_groups + n_aggregates,
    )
