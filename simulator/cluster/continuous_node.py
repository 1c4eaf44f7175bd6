"""One batching GPU as the scheduler sees it, and the settings of that scheduler.

`ContinuousNode` is a model replica's state between two iterations: its waiting line, its running batch
(in order of admission), the KV tokens they hold, and the run of decode iterations in flight; `continuous.py`
moves requests through it. `ServingLimits` are the scheduler's knobs, with vLLM's names.
"""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hybridsim.core.profile_model import ServingCostModel

from ..energy import NO_CAP, PowerCap
from ..profiles.iteration_pricing import DecodeRun

if TYPE_CHECKING:
    from .continuous import ContinuousPool

IDLE, PREFILL, DECODE = 0, 1, 2
KV_WATERMARK = 0.01
"""Share of the KV cache an admission must leave free (vLLM's watermark), so an admitted request can grow."""


def _ignore() -> None:
    pass


@dataclass(frozen=True)
class ServingLimits:
    """The engine's scheduler settings (vLLM's names)."""

    max_num_seqs: int = 256
    """Most requests in the running batch."""
    max_num_batched_tokens: int = 8192
    """Most tokens one pass may process (prompt tokens of a prefill; prefill
    chunks + decodes when chunked).
    """
    chunked_prefill: bool = False
    """Mix prefill chunks with the running decodes in one iteration (else a prefill pass pauses the batch)."""
    kv_capacity_tokens: int = 0
    """KV-cache tokens one node holds (0: the serving table's capacity)."""

    def watermark(self, capacity: int) -> int:
        return int(KV_WATERMARK * capacity)


@dataclass(frozen=True)
class ContinuousSetup:
    """A continuously batching pool: what its passes cost and how its scheduler is set."""

    model: ServingCostModel
    limits: ServingLimits = ServingLimits()
    cap: PowerCap = NO_CAP
    tabulate: bool = True
    """Read pass costs from a grid priced once per batch size (fast; see `IterationPricer`), or price
    every pass with the model itself (exact; for tests that compare against closed forms)."""

    @property
    def kv_capacity(self) -> int:
        return self.limits.kv_capacity_tokens or int(self.model.kv_capacity_tokens)


class ContinuousNode:
    """One batching GPU (a model replica): its waiting line, running batch and the
    run of iterations in flight.
    """

    __slots__ = (
        "index", "local", "pool", "queue", "running", "finishing", "phase", "clock", "held",
        "waiting_tokens", "share_j", "share_cpu_j", "gaps", "last_decode_s", "fresh", "run", "run_start",
        "run_steps", "prefilling", "busy_s", "served", "load", "pred_end", "on_done", "wake",
        "prefilled", "decoded",
    )  # fmt: skip

    def __init__(self, index: int, local: int, pool: ContinuousPool) -> None:
        self.index = index
        """Position among all nodes of the cluster."""
        self.local = local
        """Position within its pool."""
        self.pool = pool
        self.queue: deque[int] = deque()
        """The waiting line (request ids), head first."""
        self.running: list[int] = []
        """The running batch, in order of admission (the last is preempted first)."""
        self.finishing: list[tuple[int, int]] = []
        """Heap of (decode-step count at which a running request has its last token, request id)."""
        self.phase = IDLE
        self.clock = 0
        """Decode iterations run so far (every running request gains one token per iteration)."""
        self.held = 0
        """KV tokens held by the running batch (and reserved by a prefill in flight)."""
        self.waiting_tokens = 0
        """Prompt (and recompute) tokens of the waiting line."""
        self.share_j = 0.0
        """Cumulative decode energy per running request (J): a request's share is the
        difference over its stay.
        """
        self.share_cpu_j = 0.0
        self.gaps = array("d")
        """Longest time between tokens within each run of decode iterations, in order."""
        self.last_decode_s = 0.0
        """End of the last decode iteration (the running batch's last token)."""
        self.fresh: list[int] = []
        """Requests prefilled since the last decode iteration (their last token is their prefill's end)."""
        self.run: DecodeRun | None = None
        self.run_start = 0.0
        self.run_steps = 0
        self.wake = 0
        """Sequence number of the node's one pending event in the cluster's `NodeTimeline`."""
        self.prefilled: Callable[[], None] = _ignore
        self.decoded: Callable[[], None] = _ignore
        """The pool's callbacks for the end of this node's prefill pass and decode run (set by the pool)."""
        self.prefilling: list[tuple[int, int]] = []
        """The pass in flight's prompts: (request id, tokens it prefills in this pass)."""
        self.busy_s = 0.0
        """Seconds spent in passes."""
        self.served = 0
        """Requests finished."""
        self.load = 0
        """Requests waiting or running."""
        self.pred_end = 0.0
        self.on_done = None

    @property
    def busy(self) -> bool:
        return self.phase != IDLE

    @property
    def system(self) -> str:
        return self.pool.name

    @property
    def queue_length(self) -> int:
        return len(self.queue)

    @property
    def batch_size(self) -> int:
        """Requests in the running batch."""
        return len(self.running)

    @property
    def free_kv_tokens(self) -> int:
        """KV tokens not held, as of the last iteration boundary."""
        return self.pool.kv_capacity - self.held

    @property
    def kv_load(self) -> int:
        """KV tokens held plus the prompts waiting: the work a token-balancing router counts."""
        return self.held + self.waiting_tokens

    def __repr__(self) -> str:
        return (
            f"ContinuousNode({self.pool.name}#{self.local}, "
            f"running={len(self.running)}, waiting={len(self.queue)})"
        )
