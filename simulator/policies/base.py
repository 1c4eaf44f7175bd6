"""What a router is: something that looks at a request and at the floor, and names the node to serve it.

A router at the datacenter's door knows a request's prompt length (it has the prompt), the `max_tokens`
limit the client sent, and a *prediction* of the answer's length (the true length is only known once the
answer is written, unless the scenario declares an oracle). It can look at the pools' queues. It answers
with one node; under a shared queue that node stands for its pool (the request joins the pool's queue and
the first node to free up serves it).

A policy is a small class with one method, `route(request, view) -> node`. Its parameters are its
constructor's arguments, with the same names as the YAML keys under `params:`. Two optional hooks:

* `bind(view, rng)`: called once before the run, to check the pools it names exist and are not empty
  (raise `HybridsimError` naming the parameter) and to take a random stream;
* `needs_estimates = True`: ask the pools to keep expected-wait books (cost-aware routers).

The `request` object is reused for every arrival (no object per request): read it, don't keep it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from hybridsim.core.errors import HybridsimError

from ..request import Request

if TYPE_CHECKING:
    from ..cluster import Cluster, Node, Pool


class Policy(Protocol):
    """Anything with `route(request, view) -> node` can route."""

    def route(self, request: Request, view: Cluster) -> Node: ...


class RoutingPolicy:
    """Base class with the optional hooks' defaults; subclasses implement `route`."""

    needs_estimates = False
    """True for policies that read `pool.estimate` / `pool.soonest` (cost- and latency-aware)."""

    def bind(self, view: Cluster, rng: np.random.Generator) -> None:
        """Check the pools this policy names; the default needs at least one node somewhere."""
        if not view.nodes:
            raise HybridsimError("the cluster has no nodes")

    def route(self, request: Request, view: Cluster) -> Node:  # pragma: no cover - abstract
        raise NotImplementedError


def bind(policy: Policy, view: Cluster, rng: np.random.Generator) -> None:
    """Call the policy's `bind` hook, if it has one (a user's class need not)."""
    hook = getattr(policy, "bind", None)
    if hook is not None:
        hook(view, rng)


class BlockDraws:
    """A policy's random numbers, drawn from its stream a block at a time (a numpy
    call per arrival is slow).
    """

    __slots__ = ("_draw", "_block", "_next")
    BLOCK = 65536

    def __init__(self, draw: Callable[[int], np.ndarray]) -> None:
        self._draw = draw
        """Draws `size` numbers from the run's generator (e.g. `rng.random`)."""
        self._block: list[Any] = []
        self._next = 0

    def next(self) -> Any:
        """The next number of the stream."""
        if self._next == len(self._block):
            self._block, self._next = self._draw(self.BLOCK).tolist(), 0
        self._next += 1
        return self._block[self._next - 1]


def pool_named(view: Cluster, name: str, parameter: str) -> Pool:
    """The pool `name` that parameter `parameter` refers to; it must exist and have nodes."""
    if not isinstance(name, str) or name not in view.pools:  # a list or mapping is no pool's name
        raise HybridsimError(f"params.{parameter}: no pool named {name!r} (pools: {', '.join(view.pools)})")
    pool = view.pools[name]
    if not pool.nodes:
        raise HybridsimError(f"params.{parameter}: pool {name!r} has no nodes (cluster.{name}.count is 0)")
    return pool


def pools_named(view: Cluster, names: list[str] | None, parameter: str) -> list[Pool]:
    """The pools listed in `names` (default: every pool with nodes)."""
    if names is None:
        pools = [pool for pool in view.pools.values() if pool.nodes]
        if not pools:
            raise HybridsimError("the cluster has no nodes")
        return pools
    if not isinstance(names, list) or not names:
        raise HybridsimError(f"params.{parameter}: name at least one pool, as a list (got {names!r})")
    return [pool_named(view, name, f"{parameter}.{k}") for k, name in enumerate(names)]


class ThresholdPolicy(RoutingPolicy):
    """Two pools and a size limit: requests at most `threshold` go to `below`, the rest to `above`.

    The paper's static routing (§6, eqs. 9-10), made to live with queues: within the chosen pool the
    request joins the node with the fewest requests ahead. Subclasses say what "size" is.
    """

    def __init__(self, threshold: float, below: str, above: str) -> None:
        if threshold < 0:
            raise HybridsimError(f"params.threshold: must be >= 0, got {threshold}")
        self.threshold = threshold
        """The size limit T (tokens)."""
        self.below = below
        """Pool for requests of size <= T (the frugal system, e.g. `m1`)."""
        self.above = above
        """Pool for the rest (the fast system, e.g. `a100`)."""
        self._below: Pool | None = None
        self._above: Pool | None = None

    def bind(self, view: Cluster, rng: np.random.Generator) -> None:
        self._below = pool_named(view, self.below, "below")
        self._above = pool_named(view, self.above, "above")

    def size(self, request: Request) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def route(self, request: Request, view: Cluster) -> Node:
        pool = self._below if self.size(request) <= self.threshold else self._above
        return pool.least_loaded()[1]  # type: ignore[union-attr]


def offers(
    pools: list[Pool], request: Request, idle_aware: bool
) -> Iterator[tuple[float, float, float, Node]]:
    """What each pool offers for `request`: (energy J, wait s, runtime s, its soonest-free node).

    With `idle_aware`, energy is what the request adds to a node that is powered on anyway, E - P_idle * R.
    """
    for pool in pools:
        energy, runtime = pool.estimate(request)
        if idle_aware:
            energy -= pool.setup.idle_power_w * runtime
        wait, node = pool.soonest()
        yield energy, wait, runtime, node
