"""The offline optimum: the least energy any router could have spent on the same requests and nodes.

An operator comparing routers wants to know how much is left on the table. Hand the whole day's requests
(arrival times, and what each would cost on each system) to an omniscient planner that knows every answer's
length in advance and may place every request anywhere: the energy it reaches is a floor no router can go
below. Computing that planner's exact optimum is a scheduling problem (NP-hard); instead the bound solves
a *relaxation* of it, a linear program (HiGHS, via `scipy.optimize.linprog`), whose optimum is at most the
exact one, hence at most the energy of every policy the simulator runs. "X% above the offline bound" is
then an honest upper estimate of what any cleverer router could still save. This module reduces the
requests to the LP's groups and reports its optimum; `offline_lp.py` writes the LP down and solves it.

How the simulator counts energy (`metrics/summary.py`, `engine.py`), and so what the bound minimises: every
node of every pool is powered from t = 0 to the horizon H (the last finish, or the end of the arrival
window if later), drawing idle power P_s while it serves nothing; a request served alone on system s adds
its profile energy E_s and keeps the node busy for R_s. A node's busy time never exceeds H, so

    total = sum over requests of (E_s - P_s * R_s)  +  (sum over pools of N_s * P_s) * H,

exactly: the marginal energy e_s = E_s - P_s R_s of each request where it runs, plus every node's idle
power over the whole horizon. (Idle power is charged whether or not a node serves; a router can save idle
energy only by finishing sooner, never by leaving nodes unused.) The LP minimises this with:

* variables y[g, s] >= 0: how many requests of group g run on system s, sum_s y[g, s] = |g|, and the
  horizon H;
* H >= H0 = max(the arrival window's end, max_r a_r + min_s R_s(r)): nobody finishes before arriving;
* per tail request (the few whose a_r + max_s R_s(r) exceeds H0), H >= a_r + sum_s x[r, s] R_s(r);
* capacity per system and window: the requests arriving at or after a window's first arrival T_j can only
  be served after T_j, by N_s nodes each serving one at a time: sum of their work on s <= N_s (H - T_j);
* optionally per-request deadlines d_r (e.g. an SLO): a system that cannot finish r by d_r even at once is
  forbidden for r, and the requests arriving at or after T_j and due by D_k fit in N_s (D_k - T_j).

Why this is a lower bound (each item only enlarges the feasible set or lowers the objective relative to
any real run, so the LP minimum is at most the energy of every run with the same requests and nodes):

1. Fractional assignment: y may split a request between systems (every integral assignment is feasible).
2. Capacity is pooled per system and counted per window: the LP knows the N_s nodes of a system only as
   N_s x (time left), not as separate machines, and a window's work may be done at any time after its
   first arrival (work may spill forward into any later window, never backward). No queue order, no
   per-node packing. With fewer windows the constraints are fewer, hence weaker, never wrong.
3. Requests with identical cost vectors in the same window are one group (exact, no loss). When the groups
   would exceed `max_groups`, requests with costs within a relative `resolution` of each other are grouped
   and a group is priced at its members' *smallest* marginal energy and *smallest* work per system: lower
   than any member's true figures, so still a lower bound (looser; the result says so).
4. The per-request horizon constraint is kept only for the `max_tail` latest-finishing requests; dropping
   constraints can only lower the optimum.
5. Batching pools (max_batch B > 1, growth g_E and g_R): a batch of b costs max(E)(1 + g_E(b-1)) >=
   E_i (1 + g_E(b-1)) / b per member, so each member is priced at least E_i x min_b<=B (1 + g_E(b-1))/b;
   its work counts at least R_i x min_b (1 + g_R(b-1))/b towards capacity; and the idle energy it saves is at
   most P R_i x max_b (1 + g_R(b-1)) (a batch keeps the node busy at most that long per member). For B = 1
   all factors are 1 and the formula above is exact.

What it is not: a schedule. The optimal y says which share of each group would go where; it is not a
router. It assumes the same nodes stay powered all day (the simulator never powers nodes down).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from hybridsim.core.errors import HybridsimError

from .offline_lp import solve_relaxation


@dataclass(frozen=True)
class BoundPool:
    """One system as the bound needs it: its nodes, idle power, and every request priced there alone."""

    name: str
    count: int
    idle_power_w: float
    energy_j: np.ndarray
    """Active energy of each request served alone on this system (J), as the simulator prices it."""
    runtime_s: np.ndarray
    """Service time of each request served alone on this system (s)."""
    max_batch: int = 1
    runtime_growth: float = 0.0
    energy_growth: float = 0.0

    def factors(self) -> tuple[float, float, float]:
        """(energy floor, work floor, busy ceiling) per member, relative to the request served alone."""
        b = np.arange(1, max(self.max_batch, 1) + 1, dtype=np.float64)
        energy = (1.0 + self.energy_growth * (b - 1)) / b
        work = (1.0 + self.runtime_growth * (b - 1)) / b
        busy = 1.0 + self.runtime_growth * (b - 1)
        return float(energy.min()), float(work.min()), float(busy.max())


@dataclass(frozen=True)
class BoundResult:
    """The LP's optimum and what it was computed from."""

    energy_j: float
    """The bound: no router reaches less total energy (active + idle) on these requests and nodes."""
    horizon_s: float
    """The horizon H of the LP's optimum (s)."""
    marginal_j: float
    """The LP optimum's marginal energy, sum of (E_s - P_s R_s) over its placement (J)."""
    always_on_j: float
    """Every node's idle power over the LP optimum's horizon, sum_s N_s P_s H (J);
    energy_j = marginal + this.
    """
    share: dict[str, float]
    """Fraction of the requests the LP optimum places on each system."""
    requests: int
    groups: int
    windows: int
    variables: int
    constraints: int
    solve_s: float
    """Wall-clock time of building and solving the LP (s)."""
    resolution: float | None
    """None: groups are exact; else the relative cost resolution used to coarsen them (a looser bound)."""
    deadlines: bool = False
    notes: list[str] = field(default_factory=list)

    def above_pct(self, energy_j: float) -> float | None:
        """How far `energy_j` lies above the bound, in percent of the bound
        (None for a bound of 0 or less).
        """
        return 100.0 * (energy_j - self.energy_j) / self.energy_j if self.energy_j > 0 else None

    def as_dict(self) -> dict[str, object]:
        """JSON-ready figures (without the solve time, so that a summary stays
        byte-identical across reruns).
        """
        return {
            "energy_j": self.energy_j,
            "energy_kwh": self.energy_j / 3.6e6,
            "horizon_s": self.horizon_s,
            "marginal_j": self.marginal_j,
            "always_on_j": self.always_on_j,
            "share": self.share,
            "requests": self.requests,
            "groups": self.groups,
            "windows": self.windows,
            "variables": self.variables,
            "constraints": self.constraints,
            "resolution": self.resolution,
            "deadlines": self.deadlines,
        }


def _group_ids(key: np.ndarray) -> tuple[np.ndarray, int]:
    """Group index of each row of `key` (rows equal <=> same group), and the number of groups."""
    _, inverse = np.unique(key, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    return inverse, int(inverse.max()) + 1 if inverse.size else 0


def _log_bins(values: np.ndarray, resolution: float) -> np.ndarray:
    """Bin numbers such that values within a factor (1 + resolution) mostly share a bin (sign kept)."""
    magnitude = np.floor(np.log(np.maximum(np.abs(values), 1e-12)) / np.log1p(resolution))
    return np.sign(values) * (magnitude + 1e6)


def offline_energy_bound(
    arrival_s: np.ndarray,
    pools: Sequence[BoundPool],
    min_horizon_s: float = 0.0,
    deadline_s: np.ndarray | None = None,
    windows: int = 64,
    max_groups: int = 50_000,
    max_tail: int = 2_000,
    deadline_windows: int = 16,
) -> BoundResult:
    """The least total energy (J) any router could spend on these requests with these pools (a lower bound).

    `arrival_s`: each request's arrival time; each pool's `energy_j`/`runtime_s` give the same requests'
    costs there. `min_horizon_s`: the run's horizon is at least this (the end of the arrival window).
    `deadline_s`: optional absolute deadline per request; the bound is then over the routers that meet
    every deadline (and raises if none can). See the module docstring for the relaxations.
    """
    started = time.perf_counter()
    arrival = np.asarray(arrival_s, dtype=np.float64)
    requests = arrival.size
    live = [pool for pool in pools if pool.count > 0]
    if requests == 0:
        raise HybridsimError("offline bound: no requests")
    if not live:
        raise HybridsimError("offline bound: the cluster has no nodes")
    systems = len(live)
    energy = np.empty((requests, systems))
    work = np.empty((requests, systems))
    runtime = np.empty((requests, systems))
    for s, pool in enumerate(live):
        e_factor, w_factor, busy_factor = pool.factors()
        alone_e = np.asarray(pool.energy_j, dtype=np.float64)
        alone_r = np.maximum(np.asarray(pool.runtime_s, dtype=np.float64), 0.0)
        if alone_e.shape != (requests,) or alone_r.shape != (requests,):
            raise ValueError(f"pool {pool.name}: costs must have one entry per request")
        energy[:, s] = e_factor * alone_e - pool.idle_power_w * busy_factor * alone_r
        work[:, s] = w_factor * alone_r
        runtime[:, s] = alone_r  # a request never finishes sooner than its own service alone
    allowed = np.ones((requests, systems), dtype=bool)
    if deadline_s is not None:
        deadline = np.asarray(deadline_s, dtype=np.float64)
        allowed = arrival[:, None] + runtime <= deadline[:, None]
        if not allowed.any(axis=1).all():
            late = int(np.flatnonzero(~allowed.any(axis=1))[0])
            raise HybridsimError(
                f"offline bound: request {late} cannot meet its deadline on any system even with no queue"
            )
    fastest = np.where(allowed, runtime, np.inf).min(axis=1)
    horizon_floor = max(float(min_horizon_s), float((arrival + fastest).max()))

    # Windows: equal request counts in arrival order; T_j is the window's first arrival.
    order = np.argsort(arrival, kind="stable")
    count = min(max(windows, 1), requests)
    window = np.empty(requests, dtype=np.int64)
    window[order] = np.arange(requests) * count // requests
    starts = np.full(count, np.inf)
    np.minimum.at(starts, window, arrival)

    bucket = np.zeros(requests, dtype=np.int64)
    due: np.ndarray = np.empty(0)
    if deadline_s is not None:
        # Deadline buckets: D_k are deadline quantiles; a request joins the first bucket whose D_k >= d_r, so
        # "bucket <= k" selects only requests due by D_k (a subset: a weaker, still valid constraint).
        due = np.unique(np.quantile(deadline, np.linspace(0, 1, max(deadline_windows, 1) + 1)[1:]))
        bucket = np.searchsorted(due, deadline, side="left")

    # The tail: requests whose own finish could set the horizon above its floor.
    latest = arrival + np.where(allowed, runtime, -np.inf).max(axis=1)
    candidates = np.flatnonzero(latest > horizon_floor)
    tail = candidates[np.argsort(-latest[candidates], kind="stable")[:max_tail]]
    in_tail = np.zeros(requests, dtype=bool)
    in_tail[tail] = True

    resolution: float | None = None
    notes: list[str] = []
    body = np.flatnonzero(~in_tail)
    base = np.column_stack([window[body], bucket[body], allowed[body]])
    group, groups = _group_ids(np.column_stack([base, energy[body], work[body]]))
    for coarse in (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0):
        if groups <= max_groups:
            break
        resolution = coarse
        key = np.column_stack([base, _log_bins(energy[body], coarse), _log_bins(work[body], coarse)])
        group, groups = _group_ids(key)
    if resolution is not None:
        notes.append(f"requests grouped within a relative cost resolution of {resolution:g} (looser bound)")

    # Group table: the body groups, then one group per tail request.
    n_groups = groups + tail.size
    sizes = np.zeros(n_groups)
    g_energy = np.full((n_groups, systems), np.inf)
    g_work = np.full((n_groups, systems), np.inf)
    g_window = np.zeros(n_groups, dtype=np.int64)
    g_bucket = np.zeros(n_groups, dtype=np.int64)
    g_allowed = np.ones((n_groups, systems), dtype=bool)
    np.add.at(sizes, group, 1.0)
    np.minimum.at(g_energy, group, energy[body])
    np.minimum.at(g_work, group, work[body])
    g_window[group] = window[body]
    g_bucket[group] = bucket[body]
    g_allowed[group] = allowed[body]
    sizes[groups:] = 1.0
    g_energy[groups:] = energy[tail]
    g_work[groups:] = work[tail]
    g_window[groups:] = window[tail]
    g_bucket[groups:] = bucket[tail]
    g_allowed[groups:] = allowed[tail]

    optimum = solve_relaxation(
        np.array([pool.count for pool in live], dtype=np.float64),
        np.array([pool.idle_power_w for pool in live], dtype=np.float64),
        arrival,
        runtime,
        tail,
        groups,
        starts,
        due,
        sizes,
        g_energy,
        g_work,
        g_window,
        g_bucket,
        g_allowed,
        horizon_floor,
        deadline_s is not None,
    )
    return BoundResult(
        energy_j=optimum.energy_j,
        horizon_s=optimum.horizon_s,
        marginal_j=optimum.marginal_j,
        always_on_j=optimum.always_on_w * optimum.horizon_s,
        share={pool.name: float(optimum.placed[s] / requests) for s, pool in enumerate(live)},
        requests=requests,
        groups=n_groups,
        windows=count,
        variables=optimum.variables,
        constraints=optimum.constraints,
        solve_s=time.perf_counter() - started,
        resolution=resolution,
        deadlines=deadline_s is not None,
        notes=notes,
    )
