"""A GPU that serves like vLLM: a waiting line, a running batch, a KV-cache budget, and iterations.

Picture the engine on one GPU box. Requests the router sends it stand in a *waiting line*. The engine
works in *iterations*, and between two iterations it looks at the line: as long as the head of the line
fits (a free sequence slot under `max_num_seqs`, its prompt within the `max_num_batched_tokens` of one
pass, and room in the KV cache for its prompt and one step of everyone's growth), the request is admitted.
Admitted prompts are read together in one *prefill* pass, which ends with each one's first token (its time
to first token, TTFT); the running batch waits meanwhile (prefill first, as vLLM schedules by default).
Then every running request gets one token per *decode* iteration, and its KV cache grows by one token.
A request leaves when it has its answer. When the KV cache would overflow, the most recently admitted
request is *preempted*: its KV is dropped, it goes back to the head of the line, and when readmitted its
prompt and the tokens it already generated are recomputed in a prefill (counted, and paid for).

With `chunked_prefill` (`continuous_chunked.py`), an iteration instead carries every running decode plus
as much prefill as the remaining token budget allows (a long prompt is read in chunks over several
iterations while the batch keeps decoding); a request's first token comes at the end of its last chunk.

Speed: the decode iterations between two changes of the running batch differ only in the KV they read, so
they are priced together (`profiles/iteration_pricing.py`, vectorised over the steps) and the node schedules
one event at the next change: the next finish, the next KV overflow, or the next iteration boundary after
a newcomer arrives that could be admitted. Events grow with requests, not with tokens. Those events are
not SimPy's: they wait in the cluster's `NodeTimeline` (`node_timeline.py`), played up to each arrival
before the router looks, so each costs a heap push and pop.

What a router sees (as a real load balancer polls it): waiting and running requests per node, free KV
tokens and the KV load (held tokens + waiting prompts) as of the last iteration boundary, and predicted
costs: the request served alone, or added to the node's current batch (`marginal`).
"""

from __future__ import annotations

import heapq
from array import array
from collections import deque
from functools import partial
from operator import attrgetter
from typing import TYPE_CHECKING

import numpy as np

from ..profiles.iteration_pricing import IterationPricer, first_boundary, marginal_estimate
from .continuous_node import DECODE, IDLE, PREFILL, ContinuousNode, ContinuousSetup
from .costs import CostEstimator, SystemCosts
from .node_timeline import NodeTimeline, SimPyTimeline
from .serving_records import PassLog, ServingRecords

if TYPE_CHECKING:
    from ..request import Request
    from .cluster import Cluster
    from .pool import PoolSetup


_LOAD = attrgetter("load")


class ContinuousPool:
    """The batching nodes of one system, their waiting lines, and the events that
    move requests through them.
    """

    shared = False
    """Each node keeps its own waiting line (the router picks the node)."""

    def __init__(self, setup: PoolSetup, first_index: int, cluster: Cluster) -> None:
        assert setup.serving is not None
        self.name = setup.name
        self.setup = setup
        self.cluster = cluster
        self.serving: ContinuousSetup = setup.serving
        self.limits = setup.serving.limits
        self.kv_capacity = setup.serving.kv_capacity
        """KV tokens one node holds."""
        self.pricer = IterationPricer(
            setup.serving.model, setup.serving.cap, self.kv_capacity + 1 if setup.serving.tabulate else 0
        )
        """What this pool's passes cost (exact, or read from a grid: `ContinuousSetup.tabulate`)."""
        self.timeline: NodeTimeline | SimPyTimeline = cluster.timeline
        """Where this pool's nodes keep their pending events (and read the time)."""
        self.nodes = [ContinuousNode(first_index + k, k, self) for k in range(setup.count)]
        for node in self.nodes:
            node.prefilled = partial(self._prefilled, node)
            node.decoded = partial(self._decoded, node)
        self.queue: deque[int] = deque()  # no pool-wide line; kept for the Pool interface
        self.idle: list[ContinuousNode] = []
        self.estimator: CostEstimator | None = None
        self.records = ServingRecords(len(cluster.records.node))
        self.log = PassLog()
        """Every pass of every node of the pool, for batch-size, KV and power statistics."""
        self.preemptions = 0
        self.served_s = 0.0
        """Sum of finished requests' service times (for the router's wait estimate)."""
        self._input = array("q")
        self._output = array("q")
        self._max_seqs = self.limits.max_num_seqs
        self._max_tokens = self.limits.max_num_batched_tokens
        self._chunked = self.limits.chunked_prefill
        self._kv_room = self.kv_capacity - self.limits.watermark(self.kv_capacity)
        """KV tokens an admission may fill (the capacity less vLLM's watermark)."""

    # -- what a router may look at ---------------------------------------------------------------------

    @property
    def count(self) -> int:
        return len(self.nodes)

    @property
    def waiting(self) -> int:
        return sum(len(node.queue) for node in self.nodes)

    @property
    def in_service(self) -> int:
        return sum(len(node.running) for node in self.nodes)

    def least_loaded(self) -> tuple[float, ContinuousNode]:
        """(requests waiting or running per free slot's worth, node): fewest requests first."""
        best = min(self.nodes, key=_LOAD)
        return float(max(best.load - self.limits.max_num_seqs + 1, 0)), best

    def least_kv_load(self) -> tuple[int, ContinuousNode]:
        """(KV tokens held + waiting prompt tokens, node) of the node with the least."""
        best = min(self.nodes, key=lambda node: node.held + node.waiting_tokens)
        return best.held + best.waiting_tokens, best

    def soonest(self) -> tuple[float, ContinuousNode]:
        """(expected wait s, node): no wait while a sequence slot is free; else the line over the slots, in
        services of the mean length seen so far."""
        ahead, node = self.least_loaded()
        if ahead <= 0:
            return 0.0, node
        mean = self.served_s / max(sum(n.served for n in self.nodes), 1)
        return ahead * mean / self.limits.max_num_seqs, node

    def estimate(self, request: Request) -> tuple[float, float]:
        """(energy J, runtime s) the router expects `request` to cost here served alone (batch 1)."""
        return self.estimator.estimate(  # type: ignore[union-attr]
            request.index, request.input_tokens, request.predicted_output_tokens
        )

    def marginal(self, request: Request, node: ContinuousNode) -> tuple[float, float]:
        """(energy J, latency s) `request` adds joining `node`'s batch as it is now
        (see `marginal_estimate`).
        """
        return marginal_estimate(
            self.pricer, len(node.running), node.held, request.input_tokens, request.predicted_output_tokens
        )

    # -- set-up ----------------------------------------------------------------------------------------

    def load(self, costs: SystemCosts, estimator: CostEstimator) -> None:
        """Attach the router's cost estimates (the requests served alone)."""
        self.estimator = estimator

    def attach(self, input_tokens: np.ndarray, output_tokens: np.ndarray) -> None:
        """The run's true token counts (read by the event loop only)."""
        self._input = array("q", np.ascontiguousarray(input_tokens, dtype=np.int64).tobytes())
        self._output = array("q", np.ascontiguousarray(output_tokens, dtype=np.int64).tobytes())

    # -- the event loop --------------------------------------------------------------------------------

    def submit(self, node: ContinuousNode, index: int) -> None:
        """A request joins `node`'s waiting line; an idle node starts at once, a decoding one at its next
        iteration boundary if the newcomer could be admitted there."""
        cluster = self.cluster
        cluster.records.node[index] = node.index
        node.queue.append(index)
        node.load += 1
        node.waiting_tokens += self._input[index]
        if node.phase == IDLE:
            self._boundary(node)
        elif node.phase == DECODE and len(node.queue) == 1:
            self._cut(node, index)

    def _cut(self, node: ContinuousNode, index: int) -> None:
        """End the decode iterations in flight at the first boundary from now, if `index` fits there."""
        run = node.run
        assert run is not None
        now = self.timeline.now
        steps = first_boundary(run, now - node.run_start, node.run_steps)
        if steps >= node.run_steps:
            return
        batch = len(node.running)
        if not self._fits(node, node.held + batch * steps, batch, self._input[index], 0):
            return
        node.run_steps = steps
        end = node.run_start + run.end(steps)
        self.timeline.at(now + max(end - now, 0.0), node, node.decoded)  # replaces the run's later end

    def _fits(self, node: ContinuousNode, held: int, batch: int, need: int, tokens: int) -> bool:
        """Can a request needing `need` prefill tokens join a batch of `batch` holding `held` KV tokens, with
        `tokens` already in this pass? (A pass always takes its first prompt: a recomputed one may exceed the
        token budget, as the scenario's checks allow no prompt alone to.)"""
        return (
            batch < self._max_seqs
            and (tokens == 0 or self._chunked or tokens + need <= self._max_tokens)
            and held + need + batch + 2 <= self._kv_room
        )

    def _boundary(self, node: ContinuousNode) -> None:
        """Between two iterations: finish, admit, preempt, and start the next pass or run of iterations."""
        finishing = node.finishing
        if finishing and finishing[0][0] <= node.clock:
            self._finish_due(node)
        if node.queue and self._admit(node):
            return
        if not node.running:
            node.phase = IDLE
            return
        self._decode(node)

    def _finish_due(self, node: ContinuousNode) -> None:
        heap, clock = node.finishing, node.clock
        if not heap or heap[0][0] > clock:
            return
        cluster = self.cluster
        now = self.timeline.now
        finish_s, start_s, observer = cluster.records.finish_s, cluster.records.start_s, cluster.observer
        inputs, outputs, running, fresh = self._input, self._output, node.running, node.fresh
        pop = heapq.heappop
        while heap and heap[0][0] <= clock:
            index = pop(heap)[1]
            running.remove(index)
            if fresh and index in fresh:
                fresh.remove(index)
            self._leave(node, index, now)
            node.held -= inputs[index] + outputs[index]
            node.load -= 1
            node.served += 1
            finish_s[index] = now
            self.served_s += now - start_s[index]
            if observer is not None:
                observer(index)

    def _leave(self, node: ContinuousNode, index: int, now: float) -> None:
        """Settle what a request leaving the running batch (finished or preempted) got while in it."""
        records = self.records
        records.decode_j[index] += node.share_j - records.share_at_admit[index]
        records.decode_cpu_j[index] += node.share_cpu_j - records.share_cpu_at_admit[index]
        start, gaps = records.log_start[index], node.gaps
        if start < len(gaps):
            gap = max(gaps[start:]) if start + 1 < len(gaps) else gaps[start]
            if gap > records.tbt_max_s[index]:
                records.tbt_max_s[index] = gap

    def _admit(self, node: ContinuousNode) -> bool:
        """Prefill first: admit the head of the line while it fits, in one prefill
        pass. False if none fits.
        """
        records, queue = self.records, node.queue
        batch, held, tokens = len(node.running), node.held, 0
        admitted: list[tuple[int, int]] = []
        while queue:
            index = queue[0]
            need = self._input[index] + records.generated[index]
            if not self._fits(node, held, batch, need, tokens):
                break
            queue.popleft()
            admitted.append((index, need))
            node.waiting_tokens -= need
            batch, held, tokens = batch + 1, held + need + 1, tokens + need
        if not admitted:
            return False
        node.held = held
        self._start_prefill(node, admitted, tokens)
        return True

    def _start_prefill(self, node: ContinuousNode, admitted: list[tuple[int, int]], tokens: int) -> None:
        now = self.timeline.now
        starts = self.cluster.records.start_s
        records = self.records
        preemptions, prefill_j, prefill_cpu_j = records.preemptions, records.prefill_j, records.prefill_cpu_j
        time, energy, cpu = self.pricer.prefill(len(admitted), tokens)
        for index, need in admitted:
            if preemptions[index] == 0:
                starts[index] = now
            prefill_j[index] += energy * need / tokens
            prefill_cpu_j[index] += cpu * need / tokens
        self.log.add(
            node.index, now, time, len(admitted), node.held - tokens - len(admitted), energy, len(admitted), 1
        )
        node.busy_s += time
        node.prefilling = admitted
        node.phase = PREFILL
        self.timeline.at(now + time, node, node.prefilled)

    def _prefilled(self, node: ContinuousNode) -> None:
        """The prefill pass ended: each admitted request has its next (first, unless recomputed) token."""
        now = self.timeline.now
        for index, _ in node.prefilling:
            self._join(node, index, now)
        node.prefilling = []
        self._boundary(node)

    def _join(self, node: ContinuousNode, index: int, now: float) -> None:
        """`index`'s prefill ended at `now` with its next token: it joins the running batch."""
        records = self.records
        generated = records.generated[index] + 1
        if records.preemptions[index] == 0:
            records.first_token_s[index] = now
        else:
            records.tbt_max_s[index] = max(records.tbt_max_s[index], now - records.last_token_s[index])
        records.generated[index] = generated
        records.last_token_s[index] = now
        records.admit_clock[index] = node.clock
        records.log_start[index] = len(node.gaps)
        records.share_at_admit[index] = node.share_j
        records.share_cpu_at_admit[index] = node.share_cpu_j
        node.running.append(index)
        node.fresh.append(index)
        heapq.heappush(node.finishing, (node.clock + self._output[index] - generated, index))

    def _decode(self, node: ContinuousNode) -> None:
        """Run the decode iterations up to the next change: a finish, or a KV overflow (preempting first)."""
        batch = len(node.running)
        capacity = self.kv_capacity
        while node.held + batch > capacity:
            self._preempt(node)
            batch -= 1
        if not batch:
            self._boundary(node)
            return
        steps = self._run_length(min(node.finishing[0][0] - node.clock, (capacity - node.held) // batch))
        now = self.timeline.now
        run = self.pricer.decode_run(batch, node.held, steps)
        self._first_gaps(node, now, run.end(1))
        node.run, node.run_start, node.run_steps = run, now, steps
        node.phase = DECODE
        self.timeline.at(now + run.end(steps), node, node.decoded)

    def _run_length(self, steps: int) -> int:
        """How many of the next `steps` unchanged iterations one event covers: all of them (a per-iteration
        reference, `benchmarks/continuous_batching.py`, covers one)."""
        return steps

    def _first_gaps(self, node: ContinuousNode, now: float, first_step: float) -> None:
        """The first iteration's gap: since the batch's last decode for the old hands (a prefill may have
        paused them), since their own prefill for the fresh ones; later gaps go to the node's log."""
        end = now + first_step
        fresh = node.fresh
        if len(fresh) < len(node.running):
            node.gaps.append(end - node.last_decode_s)
        if not fresh:
            return
        records = self.records
        tbt_max_s, last_token_s, log_start = records.tbt_max_s, records.last_token_s, records.log_start
        start = len(node.gaps)
        for index in fresh:
            tbt_max_s[index] = max(tbt_max_s[index], end - last_token_s[index])
            log_start[index] = start
        fresh.clear()

    def _decoded(self, node: ContinuousNode) -> None:
        """The run of decode iterations reached its (possibly cut) end: book it, then the next boundary."""
        run, steps = node.run, node.run_steps
        assert run is not None
        batch = len(node.running)
        duration, energy, cpu = run.totals(steps)
        self.log.add(node.index, node.run_start, duration, batch, node.held, energy, batch * steps, 0)
        if steps > 1:
            node.gaps.append(run.longest_step(1, steps))
        node.share_j += energy / batch
        node.share_cpu_j += cpu / batch
        node.busy_s += duration
        node.clock += steps
        node.held += batch * steps
        node.last_decode_s = node.run_start + duration
        node.run = None
        self._boundary(node)

    def _preempt(self, node: ContinuousNode) -> None:
        """Drop the most recently admitted request's KV; it goes back to the head of the line (recompute)."""
        records = self.records
        index = node.running.pop()
        generated = records.generated[index] + node.clock - records.admit_clock[index]
        if index in node.fresh:
            node.fresh.remove(index)
        self._leave(node, index, self.timeline.now)
        records.generated[index] = generated
        records.preemptions[index] += 1
        if node.clock > records.admit_clock[index]:
            records.last_token_s[index] = node.last_decode_s
        node.held -= self._input[index] + generated
        node.finishing = [(clock, i) for clock, i in node.finishing if i != index]
        heapq.heapify(node.finishing)
        node.queue.appendleft(index)
        node.waiting_tokens += self._input[index] + generated
        self.preemptions += 1
