"""Chunked prefill: the batch keeps decoding while new prompts are read a slice at a time.

With prefill first, a long prompt admitted into a busy node stalls every running request for the whole
prefill (their time between tokens jumps). With chunked prefill (vLLM's `enable_chunked_prefill`,
Sarathi's stall-free batching) each iteration has a token budget, `max_num_batched_tokens`: every running
request decodes one token, and what is left of the budget reads prompt chunks, first of the requests
already part-way through their prefill, then of newcomers admitted from the head of the line. A request
joins the running batch, with its first token, at the end of the iteration that reads its last chunk.

Such an iteration is priced as a prefill pass over its chunks plus a decode iteration of the running
batch (`IterationPricer.prefill` + one decode step): the tables measure the two kinds of pass apart, so
this is an upper bound on a fused pass. Its energy is shared by tokens processed: the decode part equally
among the running requests, the prefill part by chunk tokens. While no prompt is being read, the node
runs its decode iterations in runs, exactly as `ContinuousPool` does; while one is, every iteration is an
event (a prompt takes a few iterations, so events still grow with requests, not tokens).
"""

from __future__ import annotations

from functools import partial

from .continuous import ContinuousPool
from .continuous_node import IDLE, PREFILL, ContinuousNode


class ChunkedPrefillPool(ContinuousPool):
    """A `ContinuousPool` whose iterations mix prompt chunks with the running decodes."""

    def _boundary(self, node: ContinuousNode) -> None:
        self._finish_due(node)
        if (node.queue or node.prefilling) and self._chunk(node):
            return
        if not node.running:
            node.phase = IDLE
            return
        self._decode(node)

    def _chunk(self, node: ContinuousNode) -> bool:
        """Start one mixed iteration if any prompt tokens can be read in it; False if none can."""
        capacity = self.kv_capacity
        while node.running and node.held + len(node.running) > capacity:
            self._preempt(node)
        budget = self.limits.max_num_batched_tokens - len(node.running)
        chunks: list[tuple[int, int]] = []
        partial_prompts = []
        for index, remaining in node.prefilling:
            take = min(remaining, budget)
            if take > 0:
                chunks.append((index, take))
                budget -= take
            partial_prompts.append((index, remaining))
        records, queue = self.records, node.queue
        starts = self.cluster.records.start_s
        now = self.timeline.now
        while queue and budget > 0:
            index = queue[0]
            need = self._input[index] + records.generated[index]
            if not self._fits(node, node.held, len(node.running) + len(partial_prompts), need, 0):
                break
            queue.popleft()
            node.waiting_tokens -= need
            node.held += need + 1
            if records.preemptions[index] == 0:
                starts[index] = now
            partial_prompts.append((index, need))
            take = min(need, budget)
            chunks.append((index, take))
            budget -= take
        node.prefilling = partial_prompts
        if not chunks:
            return False
        self._mixed(node, chunks)
        return True

    def _mixed(self, node: ContinuousNode, chunks: list[tuple[int, int]]) -> None:
        now = self.timeline.now
        batch = len(node.running)
        tokens = sum(take for _, take in chunks)
        time, energy, cpu = self.pricer.prefill(len(chunks), tokens)
        for index, take in chunks:
            self.records.prefill_j[index] += energy * take / tokens
            self.records.prefill_cpu_j[index] += cpu * take / tokens
        decode_time = decode_energy = decode_cpu = 0.0
        if batch:
            run = self.pricer.decode_run(batch, node.held - self._reserved(node), 1)
            decode_time, decode_energy, decode_cpu = run.end(1), run.energy(1), run.cpu(1)
            self._first_gaps(node, now, time + decode_time)
        total = time + decode_time
        remaining = dict(node.prefilling)
        first_tokens = sum(1 for index, take in chunks if take == remaining[index])
        self.log.add(
            node.index,
            now,
            total,
            batch + len(chunks),
            node.held,
            energy + decode_energy,
            batch + first_tokens,
            1,
        )
        node.busy_s += total
        node.phase = PREFILL
        self.timeline.at(
            now + total, node, partial(self._mixed_done, node, chunks, decode_energy, decode_cpu)
        )

    def _reserved(self, node: ContinuousNode) -> int:
        """KV tokens reserved for the prompts being read (their whole prompt +
        first token, from admission).
        """
        records = self.records
        return sum(self._input[index] + records.generated[index] + 1 for index, _ in node.prefilling)

    def _mixed_done(
        self,
        node: ContinuousNode,
        chunks: list[tuple[int, int]],
        decode_energy: float,
        decode_cpu: float,
    ) -> None:
        now = self.timeline.now
        batch = len(node.running)
        if batch:
            node.share_j += decode_energy / batch
            node.share_cpu_j += decode_cpu / batch
            node.clock += 1
            node.held += batch
            node.last_decode_s = now
        read = dict(chunks)
        still: list[tuple[int, int]] = []
        done: list[int] = []
        for index, remaining in node.prefilling:
            left = remaining - read.get(index, 0)
            if left > 0:
                still.append((index, left))
            else:
                done.append(index)
        node.prefilling = still
        for index in done:
            self._join(node, index, now)
        self._boundary(node)
