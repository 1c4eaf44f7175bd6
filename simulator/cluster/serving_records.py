"""The extra ledger a batching node keeps: when each request got its first token, how its tokens were spaced,
which passes it paid for, and how full the node was between changes of its batch.

A batch-1 node hands back a whole answer; a batching node streams tokens, and the user feels two numbers
besides the end-to-end latency: the time to the first token (TTFT: the end of the request's prefill) and
the time between tokens (TBT: one decode iteration, longer when someone else's prefill pauses the batch).
Energy is paid per pass and shared out to the requests in the pass by the tokens each processed: a
prefill pass by prompt tokens (recomputed tokens for a preempted request), a decode iteration equally
(each running request gets one token). So the requests' shares add up to the node's active energy exactly.

Like `metrics/records.py`, every column is a preallocated flat array indexed by request id.
"""

from __future__ import annotations

from array import array

import numpy as np

NAN = float("nan")


class ServingRecords:
    """Per-request columns of continuously batching pools (unused rows stay NaN / 0)."""

    def __init__(self, requests: int) -> None:
        zeros = bytes(8 * requests)
        self.first_token_s = array("d", [NAN]) * requests
        """When the request's first prefill ended (absolute time, s)."""
        self.tbt_max_s = array("d", zeros)
        """Longest gap between two of its consecutive tokens (s)."""
        self.prefill_j = array("d", zeros)
        """Its share of the prefill passes it was in (J), recomputation included."""
        self.prefill_cpu_j = array("d", zeros)
        self.decode_j = array("d", zeros)
        """Its share of the decode iterations it was in (J)."""
        self.decode_cpu_j = array("d", zeros)
        self.preemptions = array("q", zeros)
        """Times it was preempted (its KV dropped, recomputed later)."""
        # working state of a request while it is on a node
        self.generated = array("q", zeros)
        """Tokens generated as of `admit_clock`."""
        self.admit_clock = array("q", zeros)
        """The node's decode-step counter when the request joined the running batch."""
        self.share_at_admit = array("d", zeros)
        """The node's cumulative decode energy per request at that moment (J)."""
        self.share_cpu_at_admit = array("d", zeros)
        self.log_start = array("q", zeros)
        """First entry of the node's gap log that applies to the request."""
        self.last_token_s = array("d", zeros)
        """When it last received a token."""


class PassLog:
    """One row per pass or run of decode iterations on a pool: when, how long, how big, how full, what energy."""

    def __init__(self) -> None:
        self.node = array("q")
        """Global index of the node that ran the pass."""
        self.start_s = array("d")
        self.duration_s = array("d")
        self.batch = array("q")
        """Requests in the pass (running batch for decodes, admitted prompts for a prefill)."""
        self.kv_tokens = array("d")
        """KV tokens held at the start of the pass."""
        self.energy_j = array("d")
        self.tokens = array("q")
        """Output tokens the pass generated."""
        self.prefill = array("b")
        """1 for a prefill (or chunked, mixed) pass, 0 for decode iterations."""

    def add(
        self,
        node: int,
        start: float,
        duration: float,
        batch: int,
        kv: float,
        energy: float,
        tokens: int,
        prefill: int,
    ) -> None:
        self.node.append(node)
        self.start_s.append(start)
        self.duration_s.append(duration)
        self.batch.append(batch)
        self.kv_tokens.append(kv)
        self.energy_j.append(energy)
        self.tokens.append(tokens)
        self.prefill.append(prefill)

    def columns(self) -> dict[str, np.ndarray]:
        """The log as numpy columns."""
        return {
            "node": np.frombuffer(self.node, dtype=np.int64).copy(),
            "start_s": np.frombuffer(self.start_s, dtype=np.float64).copy(),
            "duration_s": np.frombuffer(self.duration_s, dtype=np.float64).copy(),
            "batch": np.frombuffer(self.batch, dtype=np.int64).copy(),
            "kv_tokens": np.frombuffer(self.kv_tokens, dtype=np.float64).copy(),
            "energy_j": np.frombuffer(self.energy_j, dtype=np.float64).copy(),
            "tokens": np.frombuffer(self.tokens, dtype=np.int64).copy(),
            "prefill": np.frombuffer(self.prefill, dtype=np.int8).astype(bool),
        }
